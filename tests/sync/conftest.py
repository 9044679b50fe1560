"""The closed-loop sandboxes of test_pipeline, shared with the other sync tests."""

from tests.sync.test_pipeline import conns, erp_sandbox, expense_sandbox, world  # noqa: F401
