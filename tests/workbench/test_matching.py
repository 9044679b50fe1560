"""Three-way match engine (pure Python, no database)."""

import copy
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.matching import (
    EXCEPTION,
    MATCHED,
    NO_PO_LINE,
    NOT_RECEIVED,
    PRICE_VARIANCE,
    QUANTITY_VARIANCE,
    InvLine,
    POLine,
    Receipt,
    Tolerance,
    match_lines,
    split_amount,
    summarize,
)

CENT = D("0.01")
NONE = Tolerance()


def po(key="P1", qty="10", price="5.00"):
    return POLine(key, D(qty), D(price))


def rc(key, qty, po_line="P1"):
    return Receipt(key, po_line, D(qty))


def inv(key, qty, price="5.00", po_line="P1", amount=None):
    q, p = D(qty), D(price)
    return InvLine(key, po_line, q, p, D(amount) if amount is not None else (q * p).quantize(CENT))


def codes(result, within=None):
    return [v.code for v in result.variances if within is None or v.within_tolerance is within]


def alloc(result):
    return [(a.receipt, a.quantity, a.amount) for a in result.allocations]


# --- examples -----------------------------------------------------------------------------------------------


def test_clean_line_matches_and_allocates_the_receipt():
    [r] = match_lines([inv("I1", "10")], [po()], [rc("R1", "10")], tolerance=NONE)
    assert r.key == "I1" and r.status == MATCHED and r.variances == []
    assert alloc(r) == [("R1", D(10), D("50.00"))] and r.unallocated_amount == 0


def test_price_above_tolerance_is_a_price_variance_exception():
    [r] = match_lines([inv("I1", "10", "5.50")], [po()], [rc("R1", "10")], tolerance=Tolerance(price_pct=D(5)))
    assert r.status == EXCEPTION and codes(r) == [PRICE_VARIANCE] and codes(r, within=False) == [PRICE_VARIANCE]
    assert r.variances[0].amount == D("5.00")  # (5.50 - 5.00) x 10
    assert alloc(r) == [("R1", D(10), D("55.00"))]  # exception lines still reserve what they invoice


def test_price_within_tolerance_matches_with_an_accepted_variance():
    [r] = match_lines([inv("I1", "10", "5.20")], [po()], [rc("R1", "10")], tolerance=Tolerance(price_pct=D(5)))
    assert r.status == MATCHED and codes(r, within=True) == [PRICE_VARIANCE]
    assert r.variances[0].amount == D("2.00")


def test_price_exactly_at_the_tolerance_edge_is_within():
    [r] = match_lines([inv("I1", "10", "5.25")], [po()], [rc("R1", "10")], tolerance=Tolerance(price_pct=D(5)))
    assert r.status == MATCHED


def test_lower_price_is_not_a_variance():
    [r] = match_lines([inv("I1", "10", "4.00")], [po()], [rc("R1", "10")], tolerance=NONE)
    assert r.status == MATCHED and r.variances == []


def test_amount_cap_overrides_the_percentage_tolerance():
    tol = Tolerance(price_pct=D(5), amount_abs=D("1.00"))
    [r] = match_lines([inv("I1", "10", "5.20")], [po()], [rc("R1", "10")], tolerance=tol)
    assert r.status == EXCEPTION and codes(r, within=False) == [PRICE_VARIANCE]
    assert "cap" in r.variances[0].message
    tol = Tolerance(price_pct=D(5), amount_abs=D("2.00"))
    [r] = match_lines([inv("I1", "10", "5.20")], [po()], [rc("R1", "10")], tolerance=tol)
    assert r.status == MATCHED


def test_invoicing_more_than_received_is_a_quantity_variance():
    [r] = match_lines([inv("I1", "10")], [po()], [rc("R1", "8")], tolerance=NONE)
    assert r.status == EXCEPTION and codes(r) == [QUANTITY_VARIANCE]
    assert r.variances[0].amount == D("10.00")  # 2 x 5.00
    assert alloc(r) == [("R1", D(8), D("40.00"))] and r.unallocated_amount == D("10.00")


def test_quantity_excess_within_qty_abs_matches_but_stays_unallocated():
    [r] = match_lines([inv("I1", "10")], [po()], [rc("R1", "8")], tolerance=Tolerance(qty_abs=D(2)))
    assert r.status == MATCHED and codes(r, within=True) == [QUANTITY_VARIANCE]
    assert r.allocated_quantity == 8 and r.unallocated_amount == D("10.00")


def test_nothing_received_is_not_received_whatever_the_tolerance():
    tol = Tolerance(price_pct=D(100), qty_abs=D(1000), amount_abs=D(10**6))
    [r] = match_lines([inv("I1", "10")], [po()], [], tolerance=tol)
    assert r.status == EXCEPTION and codes(r) == [NOT_RECEIVED]
    assert r.variances[0].amount == D("50.00") and r.allocations == [] and r.unallocated_amount == D("50.00")
    [r] = match_lines([inv("I1", "10")], [po()], [rc("R0", "0")], tolerance=tol)  # a zero receipt is nothing
    assert codes(r) == [NOT_RECEIVED]


def test_no_po_line_and_unknown_po_line():
    a, b = match_lines(
        [inv("I1", "1", po_line=None), inv("I2", "1", po_line="NOPE")], [po()], [rc("R1", "10")], tolerance=NONE
    )
    for r in (a, b):
        assert r.status == EXCEPTION and codes(r) == [NO_PO_LINE]
        assert r.allocations == [] and r.unallocated_amount == r.amount == D("5.00")
        assert r.variances[0].amount == D("5.00")


def test_two_invoices_for_one_po_line_both_match_when_the_rest_was_received_later():
    first, second = match_lines(
        [inv("I1", "6"), inv("I2", "4")], [po()], [rc("R1", "6"), rc("R2", "4")], tolerance=NONE
    )
    assert first.status == MATCHED and alloc(first) == [("R1", D(6), D("30.00"))]
    assert second.status == MATCHED and alloc(second) == [("R2", D(4), D("20.00"))]


def test_second_invoice_for_goods_not_yet_received_is_a_quantity_variance():
    first, second = match_lines([inv("I1", "6"), inv("I2", "4")], [po()], [rc("R1", "6")], tolerance=NONE)
    assert first.status == MATCHED
    assert second.status == EXCEPTION and codes(second) == [QUANTITY_VARIANCE] and second.allocations == []
    assert second.variances[0].amount == D("20.00")


def test_the_same_invoice_twice_is_caught_by_quantity():
    first, again = match_lines([inv("I1", "10"), inv("I1-bis", "10")], [po()], [rc("R1", "10")], tolerance=NONE)
    assert first.status == MATCHED and again.status == EXCEPTION and codes(again) == [QUANTITY_VARIANCE]


def test_second_invoice_without_any_receipt_is_not_received():
    first, second = match_lines([inv("I1", "6"), inv("I2", "4")], [po()], [], tolerance=NONE)
    assert codes(first) == [NOT_RECEIVED] and codes(second) == [NOT_RECEIVED]


def test_already_invoiced_consumes_the_earliest_receipts_first():
    [r] = match_lines(
        [inv("I2", "3")], [po()], [rc("R1", "5"), rc("R2", "5")], already_invoiced={"P1": D(7)}, tolerance=NONE
    )
    assert r.status == MATCHED and alloc(r) == [("R2", D(3), D("15.00"))]
    [r] = match_lines(
        [inv("I2", "4")], [po()], [rc("R1", "5"), rc("R2", "5")], already_invoiced={"P1": D(7)}, tolerance=NONE
    )
    assert codes(r) == [QUANTITY_VARIANCE] and r.allocated_quantity == 3


def test_fifo_split_across_partial_receipts_conserves_the_amount():
    [r] = match_lines(
        [inv("I1", "5", "2.333", amount="11.67")],
        [po(price="2.333")],
        [rc("R1", "3"), rc("R0", "0"), rc("R2", "3"), rc("R3", "4")],
        tolerance=NONE,
    )
    assert r.status == MATCHED
    assert alloc(r) == [("R1", D(3), D("7.00")), ("R2", D(2), D("4.67"))]


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        match_lines([inv("I1", "-1")], [po()], [rc("R1", "10")], tolerance=NONE)
    with pytest.raises(ValueError):
        match_lines([], [po(), po()], [], tolerance=NONE)
    with pytest.raises(ValueError):
        match_lines([], [po()], [rc("R1", "-1")], tolerance=NONE)
    with pytest.raises(ValueError):
        Tolerance(price_pct=D(-1))


def test_split_amount():
    assert split_amount(D("10.00"), [D(1), D(1), D(1)]) == [D("3.33"), D("3.33"), D("3.34")]
    assert split_amount(D("10.00"), [D(0), D(0)]) == [D(0), D("10.00")]
    assert split_amount(D("7"), [D(1), D(2)], quantum=D(1)) == [D(2), D(5)]
    assert split_amount(D("-1.00"), [D(1), D(2)]) == [D("-0.33"), D("-0.67")]
    with pytest.raises(ValueError):
        split_amount(D(1), [])


def test_summarize():
    results = match_lines(
        [inv("I1", "10"), inv("I2", "1", po_line=None), inv("I3", "10", "5.10")],
        [po()],
        [rc("R1", "20")],
        tolerance=Tolerance(price_pct=D(5)),
    )
    s = summarize(results)
    assert s["lines"] == 3
    assert s["matched"] == {"count": 2, "amount": D("101.00")}
    assert s["exception"] == {"count": 1, "amount": D("5.00")}
    assert s["exceptions_by_code"] == {NO_PO_LINE: {"count": 1, "amount": D("5.00")}}
    assert s["accepted_by_code"] == {PRICE_VARIANCE: {"count": 1, "amount": D("1.00")}}


# --- properties ---------------------------------------------------------------------------------------------

PO_KEYS = [f"P{i}" for i in range(6)]


def decimals(max_int=10**6, min_int=0):
    return st.builds(lambda n, places: D(n).scaleb(-places), st.integers(min_int, max_int), st.integers(0, 4))


@st.composite
def worlds(draw):
    n_po = draw(st.integers(1, 6))
    keys = PO_KEYS[:n_po]
    pos = [POLine(k, draw(decimals()), draw(decimals())) for k in keys]
    receipts = [
        Receipt(f"R{i}", draw(st.sampled_from([*keys, "GHOST"])), draw(decimals(10**5)))
        for i in range(draw(st.integers(0, 8)))
    ]
    lines = []
    for i in range(draw(st.integers(1, 10))):
        qty, price = draw(decimals(10**5)), draw(decimals())
        amount = draw(
            st.one_of(
                st.just((qty * price).quantize(CENT)),
                decimals(10**8, -(10**8)),  # discounts, rounding, even garbage: the amount is conserved anyway
            )
        )
        lines.append(InvLine(f"I{i % 7}", draw(st.sampled_from([*keys, None, "NOPE"])), qty, price, amount))
    already = draw(st.dictionaries(st.sampled_from(keys), decimals(10**5)))
    tol = Tolerance(
        price_pct=draw(st.sampled_from([D(0), D(1), D("2.5"), D(10), D(100)])),
        qty_abs=draw(st.sampled_from([D(0), D("0.5"), D(1), D(10)])),
        amount_abs=draw(st.sampled_from([D(0), D("0.01"), D(5), D(1000)])),
    )
    return lines, pos, receipts, already, tol


def run(world):
    lines, pos, receipts, already, tol = world
    return match_lines(lines, pos, receipts, already_invoiced=already, tolerance=tol)


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_property_one_result_per_line_in_order_and_exactly_one_status(world):
    lines = world[0]
    results = run(world)
    assert [r.key for r in results] == [line.key for line in lines]
    for r, line in zip(results, lines, strict=True):
        assert r.status in (MATCHED, EXCEPTION)
        out = [v for v in r.variances if not v.within_tolerance]
        if r.status == MATCHED:
            assert out == []
        else:
            assert out, "an exception line carries at least one out-of-tolerance variance"
        assert r.amount == line.amount


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_property_amounts_are_conserved_exactly(world):
    for r, line in zip(run(world), world[0], strict=True):
        assert sum((a.amount for a in r.allocations), D(0)) + r.unallocated_amount == line.amount
        fully = r.allocated_quantity == line.quantity
        for a in r.allocations[:-1] if fully else r.allocations:  # the last piece takes the remainder
            assert a.amount == a.amount.quantize(CENT)


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_property_allocation_never_exceeds_availability_and_is_fifo(world):
    lines, pos, receipts, already, _ = world
    results = run(world)
    known = {p.key for p in pos}
    by_key = {r.key: r for r in receipts}
    received = {k: sum((r.quantity for r in receipts if r.po_line == k), D(0)) for k in known}
    used_po = dict.fromkeys(known, D(0))
    used_receipt = dict.fromkeys(by_key, D(0))
    last_receipt_index = {}
    order = {r.key: i for i, r in enumerate(receipts)}
    for res, line in zip(results, lines, strict=True):
        assert sum((a.quantity for a in res.allocations), D(0)) <= line.quantity
        for a in res.allocations:
            assert a.quantity > 0
            receipt = by_key[a.receipt]
            assert receipt.po_line == line.po_line, "allocated against a receipt of another PO line"
            used_po[line.po_line] += a.quantity
            used_receipt[a.receipt] += a.quantity
            assert order[a.receipt] >= last_receipt_index.get(line.po_line, -1), "receipts consumed out of order"
            last_receipt_index[line.po_line] = order[a.receipt]
    for k in known:
        assert used_po[k] <= max(received[k] - already.get(k, D(0)), D(0))
    for key, used in used_receipt.items():
        assert used <= by_key[key].quantity


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_property_codes_and_tolerances_follow_the_rules(world):
    """An independent model of availability, codes and tolerance flags."""
    lines, pos, receipts, already, tol = world
    po_by_key = {p.key: p for p in pos}
    received = {k: sum((r.quantity for r in receipts if r.po_line == k), D(0)) for k in po_by_key}
    available = {k: max(received[k] - already.get(k, D(0)), D(0)) for k in po_by_key}
    for res, line in zip(run(world), lines, strict=True):
        got = {v.code: v for v in res.variances}
        p = po_by_key.get(line.po_line)
        if p is None:
            assert list(got) == [NO_PO_LINE] and res.allocations == []
            continue
        expect = []
        if line.unit_price > p.unit_price:
            expect.append(PRICE_VARIANCE)
        take = D(0)
        if received[p.key] == 0:
            expect.append(NOT_RECEIVED)
        else:
            take = min(line.quantity, available[p.key])
            available[p.key] -= take
            if line.quantity > take:
                expect.append(QUANTITY_VARIANCE)
        assert list(got) == expect
        assert res.allocated_quantity == take
        cap_ok = (
            tol.amount_abs == 0
            or sum((v.amount for v in res.variances if v.code in (PRICE_VARIANCE, QUANTITY_VARIANCE)), D(0))
            <= tol.amount_abs
        )
        if PRICE_VARIANCE in got:
            ok = line.unit_price <= p.unit_price * (1 + tol.price_pct / 100)
            assert got[PRICE_VARIANCE].within_tolerance is (ok and cap_ok)
        if QUANTITY_VARIANCE in got:
            assert got[QUANTITY_VARIANCE].within_tolerance is (line.quantity - take <= tol.qty_abs and cap_ok)
        if NOT_RECEIVED in got:
            assert got[NOT_RECEIVED].within_tolerance is False and res.status == EXCEPTION


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_property_deterministic_and_inputs_untouched(world):
    before = copy.deepcopy(world)
    assert run(world) == run(copy.deepcopy(world))
    assert world == before


@settings(max_examples=300, deadline=None)
@given(worlds(), st.integers(0, 10))
def test_property_two_runs_with_already_invoiced_equal_one_run(world, cut):
    """Matching a batch in two calls, feeding the first call's allocations in as already_invoiced,
    gives the same results as one call: the FIFO cursor survives between runs."""
    lines, pos, receipts, already, tol = world
    whole = run(world)
    first = match_lines(lines[:cut], pos, receipts, already_invoiced=already, tolerance=tol)
    carried = dict(already)
    for res, line in zip(first, lines[:cut], strict=True):
        if res.allocations:
            carried[line.po_line] = carried.get(line.po_line, D(0)) + res.allocated_quantity
    second = match_lines(lines[cut:], pos, receipts, already_invoiced=carried, tolerance=tol)
    assert first + second == whole


def test_price_variance_message_writes_prices_as_money():
    [r] = match_lines([inv("I1", "2", "1250")], [po(price="1200")], [rc("R1", "2")], tolerance=NONE)
    assert r.variances[0].message.startswith("Unit price 1,250.00 exceeds PO price 1,200.00 by 4.17%")
    [r] = match_lines([inv("I1", "10", "0.1275")], [po(price="0.12")], [rc("R1", "10")], tolerance=NONE)
    assert r.variances[0].message.startswith("Unit price 0.1275 exceeds PO price 0.12 ")
