"""The ServiceNow sandbox: Table API for approvals and users, plus an approver console (see ``server.py``)."""
