"""The nightly proof's arithmetic (workbench/ledger_proof.py), property-tested: for any set of invoices,
credit notes and accruals in any currencies and periods, the two sums agree when the ERP holds exactly
what we posted, line sums equal header totals in each currency's minor units, and one planted change
shows up as exactly that difference on exactly that document."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.ledger_proof import Held, Posted, document_drift, proof, signed, totals
from workbench.money import minor_units, quantize

KINDS = ["expense_report", "supplier_invoice", "credit_memo", "accrual", "accrual_reversal"]
CURRENCIES = ["EUR", "USD", "JPY", "BHD"]  # 2, 2, 0 and 3 minor units


@dataclass(frozen=True)
class Doc:
    posted: Posted
    lines: tuple[Decimal, ...]  # journal lines (debits) or invoice lines, as the ERP books them


@st.composite
def documents(draw) -> list[Doc]:
    docs = []
    for key in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(KINDS))
        currency = draw(st.sampled_from(CURRENCIES))
        unit = Decimal(1).scaleb(-minor_units(currency))
        # Lines in the workbench carry four places; the ERP books each in minor units.
        raw = draw(st.lists(st.integers(0, 10**10), min_size=1, max_size=6))
        lines = tuple(quantize(Decimal(n).scaleb(-4), currency) for n in raw)
        header = sum(lines, Decimal(0))
        assert header % unit == 0
        posted = Posted(
            key=key,
            kind=kind,
            entity=draw(st.sampled_from(["NW-US", "NW-DE", "NW-FR"])),
            period=draw(st.sampled_from(["2026-10", "2026-11", "2026-12"])),
            currency=currency,
            amount=signed(kind, header),  # ErpPosting.amount: what the document adds to the books
        )
        docs.append(Doc(posted, lines))
    return docs


def held_exactly(docs: list[Doc]) -> dict:
    """The ERP holding what we posted: an invoice's or memo's total, a journal's debits, all positive."""
    return {d.posted.key: Held(amount=sum(d.lines, Decimal(0)), currency=d.posted.currency) for d in docs}


@settings(max_examples=300, deadline=None)
@given(documents())
def test_when_the_erp_holds_what_we_posted_the_two_sums_are_equal(docs):
    held = held_exactly(docs)
    lines = proof([d.posted for d in docs], held)

    assert all(ln.ours == ln.erp and not ln.difference for ln in lines)
    assert not [d for d in docs if document_drift(d.posted, held[d.posted.key])]
    assert sum(ln.documents for ln in lines) == len(docs)
    # one line per entity, period and currency, never a sum across currencies
    assert len({(ln.entity, ln.period, ln.currency) for ln in lines}) == len(lines)


@settings(max_examples=300, deadline=None)
@given(documents())
def test_line_sums_equal_header_totals_in_each_currencys_minor_units(docs):
    lines = proof([d.posted for d in docs], held_exactly(docs))

    for currency, (ours, erp) in totals(lines).items():
        headers = [d for d in docs if d.posted.currency == currency]
        expected = sum((signed(d.posted.kind, sum(d.lines, Decimal(0))) for d in headers), Decimal(0))
        assert ours == erp == expected == quantize(expected, currency)
        assert sum(ln.ours for ln in lines if ln.currency == currency) == ours
    assert set(totals(lines)) == {d.posted.currency for d in docs}


@settings(max_examples=300, deadline=None)
@given(documents(), st.data())
def test_one_lost_or_changed_document_is_exactly_its_difference(docs, data):
    if not docs:
        return
    held = held_exactly(docs)
    victim = data.draw(st.sampled_from(docs))
    unit = Decimal(1).scaleb(-minor_units(victim.posted.currency))
    if data.draw(st.booleans()):
        held[victim.posted.key] = None  # the ERP lost it
    else:
        bump = unit * data.draw(st.integers(1, 10**6))
        held[victim.posted.key] = Held(amount=held[victim.posted.key].amount + bump, currency=victim.posted.currency)

    drifts = [x for x in (document_drift(d.posted, held[d.posted.key]) for d in docs) if x]
    assert [x.posted.key for x in drifts] == [victim.posted.key]  # even a lost document worth nothing
    off = [ln for ln in proof([d.posted for d in docs], held) if ln.difference]
    if not drifts[0].difference:
        assert off == []
        return
    assert len(off) == 1
    assert off[0].difference == drifts[0].difference != 0
    assert (off[0].entity, off[0].period, off[0].currency) == (
        victim.posted.entity,
        victim.posted.period,
        victim.posted.currency,
    )


def test_a_document_held_in_another_currency_counts_nothing_toward_ours():
    posted = Posted(1, "supplier_invoice", "NW-DE", "2026-11", "EUR", Decimal("100.00"))
    drift = document_drift(posted, Held(Decimal("100.00"), "USD"))
    assert drift.why == "currency" and drift.difference == Decimal("100.00")
    (line,) = proof([posted], {1: Held(Decimal("100.00"), "USD")})
    assert (line.ours, line.erp) == (Decimal("100.00"), Decimal(0))


def test_sub_minor_unit_noise_is_not_drift():
    """A total the workbench keeps to four places, booked by the ERP to the cent, is the same amount."""
    posted = Posted(1, "expense_report", "NW-US", "2026-11", "USD", Decimal("10.0049"))
    assert document_drift(posted, Held(Decimal("10.00"), "USD")) is None
    jpy = Posted(2, "credit_memo", "NW-US", "2026-11", "JPY", Decimal("-1500.4"))
    assert document_drift(jpy, Held(Decimal("1500"), "JPY")) is None
