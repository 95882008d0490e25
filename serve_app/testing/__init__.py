"""Test doubles for the service (labelled as such): nothing here is used by the production app."""
