"""The Concur sandbox: FIS v4 queue + Expense v4 report read (see ``server.py``)."""
