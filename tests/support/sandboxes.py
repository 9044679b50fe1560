"""Sandbox credentials the tests' connections use (the sandboxes accept these)."""

CREDS = {"client_id": "workbench", "client_secret": "sandbox-secret", "timeout": 5}
