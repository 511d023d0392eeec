"""Trace store: sessions, steps and annotations in SQLite (or any database by URL). No UI here."""
from .store import ImportReport, SessionFilter, StoreError, TraceStore, as_url, default_url

__all__ = ["ImportReport", "SessionFilter", "StoreError", "TraceStore", "as_url", "default_url"]
