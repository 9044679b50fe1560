"""BC date formulas, as the ERP's payment terms write them, evaluated from an invoice date."""

import calendar
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench import date_formulas
from workbench.date_formulas import FormulaError, evaluate


@pytest.mark.parametrize(
    ("formula", "start", "expected"),
    [
        ("30D", date(2026, 1, 15), date(2026, 2, 14)),
        ("0D", date(2026, 1, 15), date(2026, 1, 15)),
        ("<30D>", date(2026, 1, 15), date(2026, 2, 14)),  # as BC displays it
        ("14d", date(2026, 12, 25), date(2027, 1, 8)),  # lower case, across the year end
        ("1W", date(2026, 3, 2), date(2026, 3, 9)),
        ("-1W", date(2026, 3, 2), date(2026, 2, 23)),
        ("1M", date(2026, 1, 31), date(2026, 2, 28)),  # clamped to the month's end
        ("1M", date(2028, 1, 31), date(2028, 2, 29)),  # leap year
        ("1M", date(2026, 2, 28), date(2026, 3, 28)),  # not moved to the month's end
        ("1Q", date(2026, 11, 30), date(2027, 2, 28)),
        ("1Y", date(2028, 2, 29), date(2029, 2, 28)),
        ("CM", date(2026, 2, 10), date(2026, 2, 28)),
        ("CM", date(2028, 2, 10), date(2028, 2, 29)),
        ("CM+10D", date(2026, 1, 20), date(2026, 2, 10)),
        ("CM+10D", date(2026, 1, 31), date(2026, 2, 10)),  # the last day of the month is in it
        ("CM+10D", date(2026, 12, 5), date(2027, 1, 10)),
        ("-CM", date(2026, 5, 17), date(2026, 5, 1)),  # the start of the current month
        ("CW", date(2026, 12, 9), date(2026, 12, 13)),  # a Wednesday -> Sunday
        ("CQ", date(2026, 5, 17), date(2026, 6, 30)),
        ("CQ+1D", date(2026, 12, 1), date(2027, 1, 1)),
        ("CY", date(2026, 5, 17), date(2026, 12, 31)),
        ("1M+CM", date(2026, 1, 15), date(2026, 2, 28)),  # terms apply left to right
        ("2M-1D", date(2026, 1, 1), date(2026, 2, 28)),
        ("1M + 5D", date(2026, 1, 1), date(2026, 2, 6)),  # spaces are ignored
    ],
)
def test_formulas_give_the_date_bc_would(formula, start, expected):
    assert evaluate(formula, start) == expected


@pytest.mark.parametrize(
    "formula",
    ["", "   ", "30", "D30", "30X", "CM10D", "1M++5D", "net 30", "30D\x00", "C", "1.5M", "99999D", "é", "3" * 50],
)
def test_an_unreadable_formula_is_an_error_a_person_can_read_not_a_crash(formula):
    with pytest.raises(FormulaError) as exc:
        evaluate(formula, date(2026, 1, 15))
    assert "\x00" not in str(exc.value) and str(exc.value)


def test_a_formula_that_leaves_the_calendar_is_an_error():
    with pytest.raises(FormulaError, match="leaves the calendar"):
        evaluate("9999Y", date(2026, 1, 15))
    with pytest.raises(FormulaError, match="leaves the calendar"):
        evaluate("9999D", date(9999, 12, 1))


def test_parse_names_each_term():
    assert date_formulas.parse("CM+10D") == [("", "C", 0, "M"), ("+", "", 10, "D")]


DAYS = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31))


@given(DAYS, st.integers(min_value=0, max_value=999))
def test_n_days_is_n_calendar_days(start, n):
    assert evaluate(f"{n}D", start) == start + timedelta(days=n)


@given(DAYS)
def test_cm_is_always_the_last_day_of_the_month(start):
    end = evaluate("CM", start)
    assert (end.year, end.month) == (start.year, start.month)
    assert end.day == calendar.monthrange(start.year, start.month)[1]


@given(st.text(max_size=45), DAYS)
def test_any_text_is_a_date_or_a_formula_error_never_a_crash(text, start):
    try:
        assert isinstance(evaluate(text, start), date)
    except FormulaError:
        pass
