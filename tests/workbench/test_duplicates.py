"""Duplicate-invoice detection (pure Python, no database)."""

from decimal import Decimal as D

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from workbench.duplicates import (
    DUPLICATE,
    POSSIBLE_DUPLICATE,
    DuplicateIndex,
    InvoiceKey,
    normalize_invoice_number,
)

norm = normalize_invoice_number


# --- examples -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b",
    [
        ("INV-00123", "inv 123"),
        ("INV-00123", "Inv_0123"),
        ("2024/001", "2024-1"),
        ("inv.2024.7", "INV 2024 007"),
        ("INV\u2013123", "inv-123"),  # en dash
        ("INV\u2014\u00a0123", "inv123"),  # em dash, no-break space
        ("ＩＮＶ－００１２３", "INV-123"),  # full width
        ("INV-\u0661\u0662\u0663", "INV-123"),  # Arabic-Indic digits
        ("A00B", "A0B"),
        ("0000", "0"),
        ("INV-0/5", "INV 5"),
    ],
)
def test_equal_numbers(a, b):
    assert norm(a) == norm(b)


@pytest.mark.parametrize(
    "a, b",
    [
        ("INV-1", "INV-10"),
        ("A0B", "AB"),
        ("2024001", "2024/1"),
        ("INV-12", "INV-13"),
        ("INV-1", "INV-1A"),
    ],
)
def test_different_numbers(a, b):
    assert norm(a) != norm(b)


def test_normal_forms():
    assert norm("INV-00123") == "inv123"
    assert norm("2024/001") == "20241"
    assert norm(" 0-5 ") == "5"
    assert norm("") == "" and norm(" - / ") == ""


def key(k, supplier="S1", number="INV-1", amount="100.00", currency="EUR", date="2026-11-01"):
    return InvoiceKey(k, supplier, number, D(amount), currency, date)


def test_index_duplicate_and_possible_duplicate():
    a = key(1, number="INV-0001")
    b = key(2, supplier="S2", number="X-9")  # same amount, currency, date, other supplier
    c = key(3, number="INV-2", amount="5.00")
    idx = DuplicateIndex([a, b, c])
    assert len(idx) == 3
    new = key(4, number="inv 1", amount="100.0")
    assert idx.check(new) == [(DUPLICATE, a), (POSSIBLE_DUPLICATE, b)]
    assert idx.check(a) == [(POSSIBLE_DUPLICATE, b)]  # never itself
    assert idx.check(c) == []


def test_index_what_is_not_a_duplicate():
    idx = DuplicateIndex([key(1, number="INV-1")])
    assert idx.check(key(2, supplier="S2", number="INV-1", amount="1.00")) == []  # same number, other supplier
    assert idx.check(key(3, number="INV-2")) == []  # same supplier + amount + date, other number
    assert idx.check(key(4, supplier="S2", currency="USD")) == []  # other currency
    assert idx.check(key(5, supplier="S2", date="2026-11-02")) == []  # other date
    assert idx.check(key(6, supplier="S2", currency="eur")) == [(POSSIBLE_DUPLICATE, key(1, number="INV-1"))]


def test_empty_numbers_are_not_duplicates_of_each_other():
    idx = DuplicateIndex([key(1, number="", amount="1")])
    assert idx.check(key(2, number=" - ", amount="2")) == []


# --- properties ---------------------------------------------------------------------------------------------

SEPARATORS = [" ", "-", "\u2010", "\u2013", "\u2014", "\u2212", ".", "/", "_", "\u00a0", "\t", "\u3000"]
LETTERS = "abcxyzéüß"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_property_idempotent_on_any_text(s):
    once = norm(s)
    assert norm(once) == once


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from([*"0123abAB", *SEPARATORS, "\u0301", "\u0308", "\u0660", "\uff10", "ﬁ"])))
def test_property_idempotent_on_separator_heavy_text(s):
    once = norm(s)
    assert norm(once) == once


@st.composite
def numbers(draw):
    """An invoice number as alternating letter and digit tokens (a digit token never starts with 0)."""
    tokens = []
    letters_first = draw(st.booleans())
    for i in range(draw(st.integers(1, 6))):
        if (i % 2 == 0) == letters_first:
            tokens.append(draw(st.text(alphabet=LETTERS, min_size=1, max_size=4)))
        else:
            tokens.append(str(draw(st.integers(0, 10**9))))
    return tokens


@st.composite
def disguise(draw, tokens):
    """Same number, written differently: case changes, leading zeros on digit runs, separators between
    tokens and inside letter runs."""
    out = []
    for tok in tokens:
        if tok.isdigit():
            tok = "0" * draw(st.integers(0, 3)) + tok
        else:
            chars = []
            for ch in tok:
                ch = draw(st.sampled_from([ch, ch.upper(), ch.lower()]))
                chars.append(ch + draw(st.sampled_from(["", "", *SEPARATORS])))
            tok = "".join(chars)
        out.append(draw(st.sampled_from(["", "", *SEPARATORS])) + tok)
    return "".join(out) + draw(st.sampled_from(["", *SEPARATORS]))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_property_invariant_under_spaces_dashes_case_and_leading_zeros(data):
    tokens = data.draw(numbers())
    plain = "".join(tokens)
    assert norm(data.draw(disguise(tokens))) == norm(plain)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_property_a_different_non_zero_digit_is_a_different_number(data):
    tokens = data.draw(numbers())
    plain = "".join(tokens)
    digit_positions = [i for i, ch in enumerate(plain) if ch.isdigit()]
    assume(digit_positions)
    i = data.draw(st.sampled_from(digit_positions))
    replacement = data.draw(st.sampled_from([d for d in "123456789" if d != plain[i]]))
    changed = plain[:i] + replacement + plain[i + 1 :]
    assert norm(changed) != norm(plain)
    # also when both are written differently
    assert norm(data.draw(disguise(tokens))) != norm(changed)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_property_index_finds_every_planted_duplicate_and_never_itself(data):
    suppliers = ["S1", "S2", "S3"]
    invoices = []
    for i in range(data.draw(st.integers(0, 30))):
        tokens = data.draw(numbers())
        invoices.append(
            InvoiceKey(
                f"K{i}",
                data.draw(st.sampled_from(suppliers)),
                "".join(tokens),
                D(data.draw(st.integers(0, 500))).scaleb(-2),
                data.draw(st.sampled_from(["EUR", "USD"])),
                data.draw(st.sampled_from(["2026-11-01", "2026-11-02"])),
            )
        )
    planted = []
    for i, orig in enumerate(data.draw(st.lists(st.sampled_from(invoices), max_size=10)) if invoices else []):
        # a re-keyed copy: same supplier and number in another spelling, another amount/date
        copy = InvoiceKey(
            f"D{i}",
            orig.supplier,
            data.draw(disguise(_tokens(orig.number))),
            orig.amount + 1,
            orig.currency,
            "2027-01-01",
        )
        planted.append((copy, orig))
    idx = DuplicateIndex(invoices)
    for copy, orig in planted:
        assert (DUPLICATE, orig) in idx.check(copy)
    everyone = invoices + [c for c, _ in planted]
    idx = DuplicateIndex(everyone)
    for k in everyone:
        hits = idx.check(k)
        assert all(other.key != k.key for _, other in hits)
        # and the index agrees with a brute-force scan
        brute = [
            (DUPLICATE, o)
            for o in everyone
            if o.key != k.key and o.supplier == k.supplier and norm(o.number) and norm(o.number) == norm(k.number)
        ]
        brute += [
            (POSSIBLE_DUPLICATE, o)
            for o in everyone
            if o.key != k.key
            and o.supplier != k.supplier
            and (o.amount, o.currency, o.date) == (k.amount, k.currency, k.date)
        ]
        assert hits == brute


def _tokens(number):
    """Split a plain generated number back into its letter / digit tokens."""
    out = []
    for ch in number:
        if out and out[-1][-1].isdigit() == ch.isdigit():
            out[-1] += ch
        else:
            out.append(ch)
    return out
