"""Helpers shared by the tests: a scripted fake engine, stored-session fixtures, a fault-injecting
OpenAI-compatible server, and the child-process scripts some tests start."""
