"""The nightly proof as plain arithmetic: what we posted against what the ERP holds for it.

Pure (no database, no connector) so that it is cheap to property-test. The reconciliation
(sync/reconcile_postings.py) feeds it one `Posted` per `ErpPosting` and, for each, the `Held` the
ERP shows for that same document (None when the ERP no longer has it); the domain service
(`services/reconciliation_items.py`) turns the drift it finds into work.

Amounts are signed from the books' point of view, as `ErpPosting.amount` is: the ERP shows every
document's total as a positive number, so a credit memo and an accrual reversal count negative.
Each amount is rounded to its currency's minor units before it is summed, as the ERP books it, and
sums are only ever made within one currency.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from workbench.money import fmt, quantize

NEGATIVE_KINDS = frozenset({"credit_memo", "accrual_reversal"})
CANCELED = "canceled"
ZERO = Decimal(0)


@dataclass(frozen=True)
class Posted:
    """One document we posted (an ErpPosting)."""

    key: Hashable  # the ErpPosting's id
    kind: str
    entity: Hashable
    period: str
    currency: str
    amount: Decimal  # signed


@dataclass(frozen=True)
class Held:
    """What the ERP holds for one posted document: its total as the ERP shows it (positive)."""

    amount: Decimal
    currency: str
    status: str = "open"
    number: str = ""


@dataclass(frozen=True)
class DocumentDrift:
    posted: Posted
    held: Held | None
    ours: Decimal
    erp: Decimal
    why: str  # missing | canceled | currency | amount

    @property
    def difference(self) -> Decimal:
        return self.ours - self.erp

    def message(self) -> str:
        cur = self.posted.currency
        ours = fmt(self.ours, cur)
        if self.why == "missing":
            return f"The ERP no longer has this document: {ours} posted, none there."
        if self.why == CANCELED:
            return f"The ERP shows this document canceled: {ours} posted, nothing there."
        if self.why == "currency":
            return f"The ERP holds this document in {self.held.currency}, not {cur}: {ours} unaccounted."
        return f"The ERP holds {fmt(self.erp, cur)} for this document; we posted {ours}."


@dataclass(frozen=True)
class Line:
    """One line of the proof: one entity, period and currency."""

    entity: Hashable
    period: str
    currency: str
    ours: Decimal
    erp: Decimal
    documents: int

    @property
    def difference(self) -> Decimal:
        return self.ours - self.erp


def signed(kind: str, amount: Decimal) -> Decimal:
    """An ERP total as it adds to the books (a credit memo's or reversal's total takes away)."""
    return -amount if kind in NEGATIVE_KINDS else amount


def erp_amount(posted: Posted, held: Held | None) -> Decimal:
    """What the ERP's copy adds to `posted`'s currency: nothing if it is gone, canceled or in another currency."""
    if held is None or held.status == CANCELED or held.currency != posted.currency:
        return ZERO
    return quantize(signed(posted.kind, held.amount), posted.currency)


def document_drift(posted: Posted, held: Held | None) -> DocumentDrift | None:
    ours = quantize(posted.amount, posted.currency)
    erp = erp_amount(posted, held)
    if held is None:
        why = "missing"
    elif held.status == CANCELED:
        why = CANCELED
    elif held.currency != posted.currency:
        why = "currency"
    elif ours != erp:
        why = "amount"
    else:
        return None
    return DocumentDrift(posted, held, ours, erp, why)


def proof(posted: Iterable[Posted], held: Mapping[Hashable, Held | None]) -> list[Line]:
    """Per (entity, period, currency): the sum we posted and the sum the ERP holds for those documents."""
    sums: dict[tuple, list] = {}
    for p in posted:
        acc = sums.setdefault((p.entity, p.period, p.currency), [ZERO, ZERO, 0])
        acc[0] += quantize(p.amount, p.currency)
        acc[1] += erp_amount(p, held.get(p.key))
        acc[2] += 1
    return [Line(e, per, cur, ours, erp, n) for (e, per, cur), (ours, erp, n) in sorted(sums.items(), key=_order)]


def _order(item) -> tuple:
    (entity, period, currency), _ = item
    return (str(entity), period, currency)


def totals(lines: Iterable[Line]) -> dict[str, tuple[Decimal, Decimal]]:
    """Per currency: (ours, the ERP's) over every line (the screen's header row)."""
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for ln in lines:
        ours, erp = out.get(ln.currency, (ZERO, ZERO))
        out[ln.currency] = (ours + ln.ours, erp + ln.erp)
    return out
