"""Licenses (long-lived API keys) and ephemeral client secrets, and the gate edges call."""
