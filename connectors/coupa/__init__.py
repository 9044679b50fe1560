"""Coupa: the procurement suite (requisitions, purchase orders, receipts, supplier invoices).

- ``connector.py``  the Connector (cursor reads by ``updated-at``, ``exported=false`` queues, writes);
- ``mapping.py``    pure functions: Coupa REST JSON -> canonical records;
- ``sandbox/``      an HTTP sandbox in Coupa's REST shape, with Call Outs.
"""
