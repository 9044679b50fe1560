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
INTEGRATION = "integration"  # technical owner team


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
        CodeSpec("MISSING_COST_CENTER", "Missing cost center", Category.MASTER_DATA, Severity.MEDIUM, FINANCE_EXPENSE, 48),
        CodeSpec("UNKNOWN_COST_CENTER", "Cost center not in ERP", Category.MASTER_DATA, Severity.MEDIUM, FINANCE_EXPENSE, 48),
        CodeSpec("INVALID_TAX_CODE", "Tax code not in ERP", Category.MASTER_DATA, Severity.MEDIUM, FINANCE_EXPENSE, 48),
        CodeSpec("UNKNOWN_ENTITY", "Legal entity not in ERP", Category.MASTER_DATA, Severity.HIGH, FINANCE_EXPENSE, 24),
        CodeSpec("CLOSED_PERIOD", "Accounting period closed", Category.POLICY, Severity.HIGH, FINANCE_EXPENSE, 24),
        CodeSpec("INACTIVE_EMPLOYEE", "Employee inactive in ERP", Category.POLICY, Severity.HIGH, FINANCE_EXPENSE, 72),
        CodeSpec("ERP_REJECTED", "Rejected by the ERP", Category.POSTING, Severity.HIGH, FINANCE_EXPENSE, 24),
        CodeSpec("CHANGED_AFTER_POSTING", "Changed in source after posting", Category.POSTING, Severity.HIGH, FINANCE_EXPENSE, 48,
                 blocking=False),
        CodeSpec("MALFORMED_RECORD", "Malformed record from source", Category.TECHNICAL, Severity.HIGH, INTEGRATION, 8),
        CodeSpec("POSTING_FAILED", "Write failed after retries", Category.TECHNICAL, Severity.HIGH, INTEGRATION, 8),
        CodeSpec("CONNECTOR_UNAVAILABLE", "Connection unavailable", Category.TECHNICAL, Severity.CRITICAL, INTEGRATION, 2),
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


def rule(code: str) -> Callable[[Rule], Rule]:
    if code not in CODES:
        raise ValueError(f"describe {code} in CODES first")

    def register(fn: Rule) -> Rule:
        RULES[code] = fn
        return fn

    return register


from . import expense  # noqa: E402,F401  (registers the expense rules)
