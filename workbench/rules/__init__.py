"""Exception codes and the rules that detect them -- the one place to add a new check.

`CODES` describes every code (rule-detected or raised by sync). `RULES` are the validation rules
run on a document: each is a function ``(doc, lines, ctx) -> Iterable[Finding]`` registered with
``@rule(CODE)``. Add a rule by writing one function in a module of this package and importing that
module at the bottom of this file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from workbench.models.exceptions import Category, Severity

FINANCE_EXPENSE = "finance_expense"  # business owner team: expense accounting
ACCOUNTS_PAYABLE = "accounts_payable"  # supplier invoices, matching, payment readiness
PROCUREMENT = "procurement"  # requisitions, approvals, budgets
INTEGRATION = "integration"  # technical owner team
MASTER_DATA = "master_data"  # finance-systems admins: ownership conflicts, supplier crosswalk


@dataclass(frozen=True)
class CodeSpec:
    code: str
    title: str
    category: str
    severity: str
    owner_team: str
    sla_hours: int
    blocking: bool = True  # an active item with this code stops the document from posting

    @property
    def kind(self) -> str:
        return "technical" if self.category == Category.TECHNICAL else "business"


CODES: dict[str, CodeSpec] = {
    spec.code: spec
    for spec in [
        CodeSpec(
            "MISSING_COST_CENTER", "Missing cost center", Category.MASTER_DATA, Severity.MEDIUM, FINANCE_EXPENSE, 48
        ),
        CodeSpec(
            "UNKNOWN_COST_CENTER", "Cost center not in ERP", Category.MASTER_DATA, Severity.MEDIUM, FINANCE_EXPENSE, 48
        ),
        CodeSpec("INVALID_TAX_CODE", "Tax code not in ERP", Category.MASTER_DATA, Severity.MEDIUM, FINANCE_EXPENSE, 48),
        CodeSpec(
            "BLOCKED_GL_ACCOUNT",
            "GL account the ERP refuses",
            Category.MASTER_DATA,
            Severity.MEDIUM,
            FINANCE_EXPENSE,
            48,
        ),
        CodeSpec("UNKNOWN_ENTITY", "Legal entity not in ERP", Category.MASTER_DATA, Severity.HIGH, FINANCE_EXPENSE, 24),
        CodeSpec("CLOSED_PERIOD", "Accounting period closed", Category.POLICY, Severity.HIGH, FINANCE_EXPENSE, 24),
        CodeSpec(
            "INACTIVE_EMPLOYEE", "Employee inactive or unknown", Category.POLICY, Severity.HIGH, FINANCE_EXPENSE, 72
        ),
        CodeSpec("ERP_REJECTED", "Rejected by the ERP", Category.POSTING, Severity.HIGH, FINANCE_EXPENSE, 24),
        CodeSpec(
            "CHANGED_AFTER_POSTING",
            "Changed in source after posting",
            Category.POSTING,
            Severity.HIGH,
            FINANCE_EXPENSE,
            48,
            blocking=False,
        ),
        CodeSpec("MALFORMED_RECORD", "Malformed record from source", Category.TECHNICAL, Severity.HIGH, INTEGRATION, 8),
        CodeSpec("POSTING_FAILED", "Write failed after retries", Category.TECHNICAL, Severity.HIGH, INTEGRATION, 8),
        CodeSpec(
            "CONNECTOR_UNAVAILABLE", "Connection unavailable", Category.TECHNICAL, Severity.CRITICAL, INTEGRATION, 2
        ),
        # Procure-to-pay: requisitions and approvals
        CodeSpec("BLOCKED_SUPPLIER", "Supplier blocked or inactive", Category.APPROVAL, Severity.HIGH, PROCUREMENT, 24),
        CodeSpec("NO_CONTRACT", "No contract for this category", Category.APPROVAL, Severity.MEDIUM, PROCUREMENT, 48),
        CodeSpec("BUDGET_EXCEEDED", "Budget exceeded", Category.APPROVAL, Severity.HIGH, PROCUREMENT, 24),
        CodeSpec("SOD_VIOLATION", "Segregation of duties", Category.APPROVAL, Severity.CRITICAL, PROCUREMENT, 8),
        CodeSpec(
            "APPROVAL_OVERDUE", "Approval overdue", Category.APPROVAL, Severity.MEDIUM, PROCUREMENT, 24, blocking=False
        ),
        CodeSpec("NO_APPROVER", "No eligible approver", Category.APPROVAL, Severity.HIGH, PROCUREMENT, 24),
        # Procure-to-pay: supplier invoices and three-way match
        CodeSpec("PRICE_VARIANCE", "Price above PO", Category.MATCHING, Severity.MEDIUM, ACCOUNTS_PAYABLE, 48),
        CodeSpec(
            "QUANTITY_VARIANCE", "Quantity above received", Category.MATCHING, Severity.MEDIUM, ACCOUNTS_PAYABLE, 48
        ),
        CodeSpec("NOT_RECEIVED", "Invoiced, not received", Category.MATCHING, Severity.MEDIUM, ACCOUNTS_PAYABLE, 72),
        CodeSpec(
            "NO_PURCHASE_ORDER", "No matching purchase order", Category.MATCHING, Severity.MEDIUM, ACCOUNTS_PAYABLE, 48
        ),
        CodeSpec("DUPLICATE_INVOICE", "Duplicate invoice", Category.MATCHING, Severity.HIGH, ACCOUNTS_PAYABLE, 24),
        CodeSpec("UNKNOWN_SUPPLIER", "Supplier not in ERP", Category.MATCHING, Severity.HIGH, ACCOUNTS_PAYABLE, 24),
        # Master-data governance: not about one document, so they never block a posting
        CodeSpec(
            "OWNERSHIP_CONFLICT",
            "Change from a system that does not own the field",
            Category.MASTER_DATA,
            Severity.MEDIUM,
            MASTER_DATA,
            72,
            blocking=False,
        ),
        CodeSpec(
            "SUPPLIER_MATCH_UNCONFIRMED",
            "Supplier match waiting for confirmation",
            Category.MASTER_DATA,
            Severity.LOW,
            MASTER_DATA,
            72,
            blocking=False,
        ),
        CodeSpec(
            "INVALID_EINVOICE", "E-invoice fails UBL 2.1 schema", Category.MATCHING, Severity.HIGH, ACCOUNTS_PAYABLE, 24
        ),
        # A credit note is booked in the ERP against its invoice: until that invoice is booked, it waits
        # (it resolves itself when the invoice posts; nothing to fix unless the invoice never comes).
        CodeSpec(
            "CREDIT_NOTE_WAITING",
            "Credit note waits for its invoice",
            Category.MATCHING,
            Severity.LOW,
            ACCOUNTS_PAYABLE,
            72,
            blocking=False,
        ),
        # Reconciliation: the ERP and the workbench disagree after the fact; work, never a block
        CodeSpec(
            "RECONCILIATION_DRIFT",
            "ERP master data differs from ours",
            Category.TECHNICAL,
            Severity.MEDIUM,
            INTEGRATION,
            72,
            blocking=False,
        ),
        CodeSpec(
            "POSTING_DRIFT",
            "ERP no longer holds what we posted",
            Category.POSTING,
            Severity.HIGH,
            FINANCE_EXPENSE,
            48,
            blocking=False,
        ),
    ]
}


@dataclass
class Finding:
    code: str
    message: str
    line: object | None = None  # DocumentLine or None for document-level findings
    root_cause: str = ""  # the shared cause, e.g. the unmapped value; groups items
    detail: dict = field(default_factory=dict)


Rule = Callable[..., Iterable[Finding]]
RULES: dict[str, Rule] = {}
RULE_KINDS: dict[str, frozenset[str]] = {}  # code -> document kinds the rule runs on


def rule(code: str, kinds: Iterable[str] = ("expense_report",)) -> Callable[[Rule], Rule]:
    if code not in CODES:
        raise ValueError(f"describe {code} in CODES first")

    def register(fn: Rule) -> Rule:
        RULES[code] = fn
        RULE_KINDS[code] = frozenset(kinds)
        return fn

    return register


def rules_for(kind: str) -> dict[str, Rule]:
    return {code: fn for code, fn in RULES.items() if kind in RULE_KINDS[code]}


from . import accounts, expense, procurement  # noqa: E402,F401  (registers the rules)
