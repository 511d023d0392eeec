"""Trace store: sessions, steps and annotations in SQLite (or any database by URL). No UI here."""
from .connection import StoreError, as_url, default_url
from .jsonl import ImportReport
from .queries import Page, SessionFilter
from .store import TraceStore

__all__ = ["ImportReport", "Page", "SessionFilter", "StoreError", "TraceStore", "as_url", "default_url"]
