"""Caller keys, rate limits and budgets: who may route, and what they may spend (see README,
"Caller keys and budgets"). The request path only talks to ``serve_app.auth.gate.KeyGate``.
(Nothing is imported here, so that ``serve_app.auth.ledger`` stays light to import.)"""
