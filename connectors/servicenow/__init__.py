"""ServiceNow: the approval engine (Table API ``sysapproval_approver`` and ``sys_user``).

- ``connector.py``  the Connector (read approvals and users incrementally, create and cancel approvals);
- ``mapping.py``    pure functions: Table API records -> canonical ``approval_decision`` / ``approver``,
                    and canonical write payloads -> Table API bodies;
- ``sandbox/``      an HTTP sandbox in the Table API's shape, with an HTML console to act as approver.
"""
