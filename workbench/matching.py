"""Three-way match: purchase order line x goods receipts x supplier invoice lines.

Pure Python (stdlib + Decimal, no Django, no database) so it can run over a
whole batch in one pass: ``match_lines`` is O(invoice lines + receipts + PO
lines); every PO line keeps a FIFO cursor into its receipts, so no line ever
rescans receipts an earlier line consumed.

Decisions (the rules the lead engineer asked to have written down):

* **Order.** Invoice lines are processed in the order given (the caller sorts,
  e.g. by invoice date then id); the result is one ``LineResult`` per input
  line, in input order. Same input, same output.
* **Availability.** For a PO line: sum of its receipts - ``already_invoiced``
  (quantity consumed by invoice lines outside this call, e.g. earlier runs) -
  what earlier lines of this call consumed, never below zero. Consumption is
  FIFO over the receipts in the order given: ``already_invoiced`` eats the
  earliest receipts first, then each line continues where the last one stopped.
  ``already_invoiced`` should be the *allocated* quantity of earlier lines (sum
  of their ``Allocation.quantity``), not their invoiced quantity.
* **Exception lines reserve quantity.** Every line with a known, received PO
  line allocates ``min(invoiced qty, available)`` whatever its status, so a
  second invoice for the same goods is a QUANTITY_VARIANCE rather than a match.
* **Checks** (only for a known PO line):
  - PRICE_VARIANCE when invoice unit price > PO unit price; amount =
    (invoice price - PO price) x invoiced qty. Within tolerance when the
    invoice price <= PO price x (1 + price_pct / 100). A lower price is not a
    variance.
  - NOT_RECEIVED when nothing was ever received for the PO line (receipts sum
    to zero); amount = the line amount. Never within tolerance.
  - QUANTITY_VARIANCE when something was received but the invoiced qty exceeds
    what is still available (also when earlier invoices consumed all of it);
    amount = excess qty x invoice unit price. Within tolerance when the excess
    <= qty_abs. The excess stays unallocated (``unallocated_amount``) even on a
    matched line.
  - NO_PO_LINE when the line has no PO line or an unknown one; amount = the
    line amount. Never within tolerance; nothing is allocated.
  - ``amount_abs`` is a cap on the whole line: when it is > 0 and the sum of
    the line's PRICE_VARIANCE + QUANTITY_VARIANCE amounts exceeds it, those
    variances are all out of tolerance even if each passed its own percentage
    / quantity tolerance. ``amount_abs == 0`` disables the cap (the percentage
    and quantity tolerances still apply), as SAP-style tolerance keys do.
* **Status.** ``exception`` iff the line has at least one variance with
  ``within_tolerance=False``; otherwise ``matched`` (possibly with accepted
  variances listed, each ``within_tolerance=True``).
* **Amounts.** Variance amounts are quantized to ``quantum`` (default 0.01,
  ROUND_HALF_UP). The line amount is split over its allocations (and the
  unallocated quantity, last) *in proportion to quantity* with
  ``split_amount``: each piece is quantized, the last piece takes the
  remainder, so ``sum(allocation amounts) + unallocated_amount == amount``
  exactly. When the invoiced amount equals qty x unit price this is
  piece qty x unit price rounded; when it does not (line discounts, rounding
  on the invoice) the difference is spread instead of landing on one piece.
  Pass ``quantum=Decimal(1)`` for zero-decimal currencies (JPY...): call once
  per currency group when a batch mixes them.
* **Input.** Quantities must be >= 0 (credit notes / returns are out of
  scope): a negative quantity or ``already_invoiced`` raises ``ValueError``, as do duplicate PO line
  keys. Receipts for unknown PO lines are ignored. The PO's ordered quantity
  is carried but not checked: receipts govern what may be invoiced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

MATCHED = "matched"
EXCEPTION = "exception"

PRICE_VARIANCE = "PRICE_VARIANCE"
QUANTITY_VARIANCE = "QUANTITY_VARIANCE"
NOT_RECEIVED = "NOT_RECEIVED"
NO_PO_LINE = "NO_PO_LINE"
CODES = (PRICE_VARIANCE, QUANTITY_VARIANCE, NOT_RECEIVED, NO_PO_LINE)

CENT = Decimal("0.01")
ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Tolerance:
    price_pct: Decimal = ZERO  # invoice unit price may exceed the PO's by this %
    qty_abs: Decimal = ZERO  # invoiced qty may exceed the available received qty by this many units
    amount_abs: Decimal = ZERO  # cap on the line's total price + quantity variance; 0 = no cap

    def __post_init__(self):
        for name in ("price_pct", "qty_abs", "amount_abs"):
            if getattr(self, name) < 0:
                raise ValueError(f"tolerance {name} must be >= 0")


@dataclass(slots=True)
class POLine:
    key: object
    quantity: Decimal  # ordered (informational: receipts govern)
    unit_price: Decimal


@dataclass(slots=True)
class Receipt:
    key: object
    po_line: object
    quantity: Decimal


@dataclass(slots=True)
class InvLine:
    key: object
    po_line: object | None
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # net line amount as invoiced


@dataclass(slots=True)
class Allocation:
    receipt: object  # Receipt.key
    quantity: Decimal
    amount: Decimal


@dataclass(slots=True)
class Variance:
    code: str
    message: str
    amount: Decimal
    within_tolerance: bool = False


@dataclass(slots=True)
class LineResult:
    key: object
    status: str  # MATCHED | EXCEPTION
    amount: Decimal  # the line amount, = sum(a.amount for a in allocations) + unallocated_amount
    allocations: list[Allocation] = field(default_factory=list)
    unallocated_amount: Decimal = ZERO
    variances: list[Variance] = field(default_factory=list)

    @property
    def allocated_quantity(self) -> Decimal:
        return sum((a.quantity for a in self.allocations), ZERO)


def split_amount(total: Decimal, quantities: Sequence[Decimal], *, quantum: Decimal = CENT) -> list[Decimal]:
    """Split ``total`` in proportion to ``quantities``: each piece quantized to
    ``quantum`` (ROUND_HALF_UP), the last takes the remainder, so the pieces sum
    to ``total`` exactly. All-zero quantities put everything on the last piece."""
    n = len(quantities)
    if n == 0:
        raise ValueError("split_amount needs at least one quantity")
    if n == 1:
        return [total]
    whole = ZERO
    for q in quantities:
        if q < 0:
            raise ValueError("split_amount quantities must be >= 0")
        whole += q
    pieces: list[Decimal] = []
    if whole == 0:
        pieces = [ZERO] * (n - 1)
        pieces.append(total)
        return pieces
    done = ZERO
    for q in quantities[:-1]:
        piece = (total * q / whole).quantize(quantum, rounding=ROUND_HALF_UP)
        pieces.append(piece)
        done += piece
    pieces.append(total - done)
    return pieces


class _POState:
    """Per PO line: price limit and a FIFO cursor into its receipts."""

    __slots__ = ("unit_price", "limit", "receipts", "idx", "left", "received", "available")

    def __init__(self, po: POLine, receipts: list[Receipt], consumed: Decimal, price_pct: Decimal):
        self.unit_price = po.unit_price
        self.limit = po.unit_price + po.unit_price * price_pct / HUNDRED
        self.receipts = receipts
        received = ZERO
        for r in receipts:
            received += r.quantity
        self.received = received
        self.available = received - consumed if consumed < received else ZERO
        self.idx = 0
        self.left = receipts[0].quantity if receipts else ZERO
        if consumed > 0:
            self._take(min(consumed, received), None)

    def _take(self, qty: Decimal, out: list[Allocation] | None) -> None:
        """Consume ``qty`` (<= what is left) FIFO; record pieces in ``out``."""
        receipts = self.receipts
        idx, left = self.idx, self.left
        while qty > 0:
            while left <= 0:  # skip exhausted / zero-quantity receipts
                idx += 1
                left = receipts[idx].quantity
            take = left if left <= qty else qty
            if out is not None:
                out.append(Allocation(receipts[idx].key, take, ZERO))
            left -= take
            qty -= take
        self.idx, self.left = idx, left


def _q(amount: Decimal, quantum: Decimal) -> Decimal:
    return amount.quantize(quantum, rounding=ROUND_HALF_UP)


def _n(value: Decimal) -> str:
    """A quantity / price for a message: no trailing zeros, no exponent (1.50 -> 1.5, 1E+2 -> 100)."""
    return f"{value.normalize():f}" if value else "0"


def _price(value: Decimal) -> str:
    """A unit price for a message, as money is written: 1,250.00; more places only when it has them (0.1234)."""
    places = max(2, -value.normalize().as_tuple().exponent) if value else 2
    return f"{value:,.{places}f}"


def match_lines(
    inv_lines: Iterable[InvLine],
    po_lines: Iterable[POLine],
    receipts: Iterable[Receipt],
    *,
    tolerance: Tolerance,
    already_invoiced: Mapping[object, Decimal] | None = None,
    quantum: Decimal = CENT,
) -> list[LineResult]:
    """Match invoice lines against PO lines and their receipts; see the module doc."""
    pos: dict[object, POLine] = {}
    for po in po_lines:
        if po.key in pos:
            raise ValueError(f"duplicate PO line key {po.key!r}")
        pos[po.key] = po
    by_po: dict[object, list[Receipt]] = {}
    for r in receipts:
        if r.quantity < 0:
            raise ValueError(f"receipt {r.key!r}: negative quantity")
        if r.po_line in pos:
            lst = by_po.get(r.po_line)
            if lst is None:
                by_po[r.po_line] = [r]
            else:
                lst.append(r)
    already = already_invoiced or {}
    price_pct, qty_abs, amount_abs = tolerance.price_pct, tolerance.qty_abs, tolerance.amount_abs
    states: dict[object, _POState] = {}
    results: list[LineResult] = []
    append = results.append

    for line in inv_lines:
        qty, price, amount = line.quantity, line.unit_price, line.amount
        if qty < 0:
            raise ValueError(f"invoice line {line.key!r}: negative quantity")
        po_key = line.po_line
        po = pos.get(po_key) if po_key is not None else None
        if po is None:
            msg = "Invoice line has no PO line" if po_key is None else f"Unknown PO line {po_key!r}"
            append(LineResult(line.key, EXCEPTION, amount, [], amount, [Variance(NO_PO_LINE, msg, amount, False)]))
            continue
        st = states.get(po_key)
        if st is None:
            consumed = already.get(po_key, ZERO)
            if consumed < 0:
                raise ValueError(f"already_invoiced[{po_key!r}] is negative")
            st = states[po_key] = _POState(po, by_po.get(po_key, []), consumed, price_pct)

        variances: list[Variance] = []
        toleranced: list[Variance] = []  # price / quantity variances, subject to the amount cap
        if price > st.unit_price:
            pv = Variance(
                PRICE_VARIANCE,
                f"Unit price {_price(price)} exceeds PO price {_price(st.unit_price)}"
                + (f" by {_q((price - st.unit_price) * HUNDRED / st.unit_price, CENT)}%" if st.unit_price else "")
                + f" (tolerance {_n(price_pct)}%)",
                _q((price - st.unit_price) * qty, quantum),
                price <= st.limit,
            )
            variances.append(pv)
            toleranced.append(pv)

        allocations: list[Allocation] = []
        if st.received <= 0:
            variances.append(Variance(NOT_RECEIVED, f"Nothing received for PO line {po_key!r}", amount, False))
            take = ZERO
        else:
            available = st.available
            take = qty if qty <= available else available
            if take > 0:
                st._take(take, allocations)
                st.available = available - take
            excess = qty - take
            if excess > 0:
                qv = Variance(
                    QUANTITY_VARIANCE,
                    f"Invoiced quantity {_n(qty)} exceeds available received quantity {_n(available)}"
                    f" by {_n(excess)} (tolerance {_n(qty_abs)})",
                    _q(excess * price, quantum),
                    excess <= qty_abs,
                )
                variances.append(qv)
                toleranced.append(qv)

        if amount_abs > 0 and toleranced:
            total = sum((v.amount for v in toleranced), ZERO)
            if total > amount_abs:
                for v in toleranced:
                    if v.within_tolerance:
                        v.within_tolerance = False
                        v.message += f"; line variance {total} exceeds the {amount_abs} cap"

        # Split the line amount over the allocations (+ the unallocated rest, last).
        n = len(allocations)
        if n == 0:
            unallocated = amount
        elif take == qty:  # fully allocated: no unallocated piece
            if n == 1:
                allocations[0].amount = amount
            else:
                for a, piece in zip(
                    allocations, split_amount(amount, [a.quantity for a in allocations], quantum=quantum), strict=True
                ):
                    a.amount = piece
            unallocated = ZERO
        else:
            pieces = split_amount(amount, [*(a.quantity for a in allocations), qty - take], quantum=quantum)
            for a, piece in zip(allocations, pieces, strict=False):
                a.amount = piece
            unallocated = pieces[-1]

        status = MATCHED
        for v in variances:
            if not v.within_tolerance:
                status = EXCEPTION
                break
        append(LineResult(line.key, status, amount, allocations, unallocated, variances))
    return results


def summarize(results: Iterable[LineResult]) -> dict:
    """Counts and amounts: matched / exception lines, out-of-tolerance variances
    per code (``exceptions_by_code``) and accepted ones (``accepted_by_code``).
    Variance counts are per variance (a line can carry two codes)."""
    out: dict = {
        "lines": 0,
        "matched": {"count": 0, "amount": ZERO},
        "exception": {"count": 0, "amount": ZERO},
        "exceptions_by_code": {},
        "accepted_by_code": {},
    }
    for r in results:
        out["lines"] += 1
        bucket = out[r.status]
        bucket["count"] += 1
        bucket["amount"] += r.amount
        for v in r.variances:
            per = out["accepted_by_code" if v.within_tolerance else "exceptions_by_code"]
            slot = per.get(v.code)
            if slot is None:
                slot = per[v.code] = {"count": 0, "amount": ZERO}
            slot["count"] += 1
            slot["amount"] += v.amount
    return out
