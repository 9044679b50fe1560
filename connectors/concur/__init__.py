"""SAP Concur: expense reports from the Financial Integration Service (FIS) v4 queue.

- ``connector.py``  the Connector (read the queue, acknowledge, confirm postings and payments);
- ``mapping.py``    pure functions: FIS expense document -> canonical ``expense_report``, and
                    canonical write payloads -> FIS request bodies;
- ``sandbox/``      an HTTP sandbox in FIS v4 shape (plus a minimal Expense v4 report read).
"""
