"""Caller keys, rate limits and budgets: who may route, and what they may spend (see README,
"Caller keys and budgets"). The request path only talks to ``KeyGate`` (``gate.py``)."""

from serve_app.auth.gate import KeyGate, Ticket

__all__ = ["KeyGate", "Ticket"]
