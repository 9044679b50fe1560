"""The master-data streams the ERP (and the identity provider, the procurement suite) send, and how
their values are stored. Shared by the upsert (services/masterdata.py), field ownership
(services/ownership.py) and the nightly reconciliation (sync/reconcile.py), so all three agree on
what a value is."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from workbench.models import (
    AccountingPeriod,
    CostCenter,
    Currency,
    Employee,
    GLAccount,
    PaymentTerm,
    Project,
    Supplier,
    TaxCode,
)
from workbench.money import parse_amount
from workbench.values import as_date

# stream -> (model, fields taken from the record besides entity/code)
STREAMS = {
    "payment_terms": (PaymentTerm, ["name", "due_date_calculation", "discount_date_calculation", "discount_percent"]),
    "currencies": (Currency, ["name", "symbol", "decimals"]),
    "cost_centers": (CostCenter, ["name"]),
    "gl_accounts": (GLAccount, ["name", "category", "blocked", "account_type", "direct_posting"]),
    "tax_codes": (TaxCode, ["name", "tax_type"]),
    "accounting_periods": (AccountingPeriod, ["name", "start", "end", "closed"]),
    "employees": (Employee, ["name", "email", "status"]),
    "projects": (Project, ["name"]),
    "suppliers": (Supplier, ["name", "tax_id", "currency", "blocked", "changed_by_email", "payment_terms_code"]),
}
ORDER = ["legal_entities", *STREAMS, "budgets"]  # entities first: everything else hangs off them
PERCENT_PLACES = Decimal("0.0001")  # PaymentTerm.discount_percent's decimal_places
MAX_DECIMALS = 4  # Currency.decimals: ISO 4217 minor units go up to 4 (CLF, UYW)
# Owned by the procurement suite, not the ERP: read from it by the procurement pull.
PROCUREMENT_STREAMS = ["commodities", "contracts"]


def field_value(field: str, rec: dict):
    """A record's value as the ledger stores it. Raises ValueError for a value the ledger cannot
    hold (a percent that is not a number...): the caller reports that record instead of storing it."""
    v = rec.get(field)
    if field == "discount_percent":
        percent = parse_amount(v).quantize(PERCENT_PLACES, rounding=ROUND_HALF_UP)
        if not 0 <= percent <= 100:
            raise ValueError(f"discount percent {v!r} is not between 0 and 100")
        return percent
    if field == "decimals":
        if isinstance(v, bool) or not re.fullmatch(r"\d+", str(v).strip()) or int(v) > MAX_DECIMALS:
            raise ValueError(f"decimals {v!r} is not a whole number from 0 to {MAX_DECIMALS}")
        return int(v)
    if field in ("start", "end"):
        return as_date(v)
    if field == "blocked" and not isinstance(v, bool):
        v = str(v or "").strip()
        return v if v in ("Payment", "All") else ""
    if field in ("blocked", "closed", "direct_posting"):
        return bool(v)
    if field == "account_type":
        return str(v or GLAccount.POSTING)[:20]
    if field == "tax_id":
        return str(v or "").replace(" ", "").upper()[:40]
    if field in (
        "cost_center",
        "manager_code",
        "due_date_calculation",
        "discount_date_calculation",
        "payment_terms_code",
    ):
        return str(v or "")[:40]
    if field == "symbol":
        return str(v or "")[:8]
    if field == "currency":
        return str(v or "")[:3].upper()
    if field == "status":
        return str(v or "active").lower()
    return "" if v is None else str(v)[:200]


# Fields another system may send besides the ERP's (the identity provider knows where people sit).
EXTRA_FIELDS = {"employees": ["cost_center", "manager_code"]}
