"""Evaluation: run routers and baselines over question sets into the trace store, and report."""
