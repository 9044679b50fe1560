"""When a supplier invoice is due, and what paying it early is worth.

Pure Python (no ORM): the invoice's own terms are trusted first (UBL or the procurement suite said
them), then the vendor's payment terms in the ERP, evaluated from the invoice date with BC's date
formulas. A value no ledger should hold (a due date in year 9999, a discount of 500 %, text with a
NUL byte) is refused field by field, with a note saying why, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from workbench import date_formulas
from workbench.money import parse_amount, quantize
from workbench.values import as_date

TERMS_WIDTH = 100  # Document.payment_terms
NOTE_WIDTH = 500  # Document.payment_terms_note
# A due date more than this far from the invoice date is a typo or an attack, not a term of payment.
DUE_BEFORE = timedelta(days=366)
DUE_AFTER = timedelta(days=3 * 366)
MAX_DAYS = 3 * 366
FIELDS = ("due_date", "payment_terms", "discount_percent", "discount_due_date", "payment_terms_note")


@dataclass(frozen=True)
class VendorTerms:
    """A vendor's payment terms in the ERP (PaymentTerm), as plain values."""

    code: str
    due_formula: str = ""
    discount_formula: str = ""
    discount_percent: Decimal = Decimal(0)


@dataclass
class InvoiceTerms:
    due_date: date | None = None
    payment_terms: str = ""
    discount_percent: Decimal | None = None
    discount_due_date: date | None = None
    notes: list[str] = field(default_factory=list)

    def as_fields(self) -> dict:
        return {
            "due_date": self.due_date,
            "payment_terms": self.payment_terms,
            "discount_percent": self.discount_percent,
            "discount_due_date": self.discount_due_date,
            "payment_terms_note": " ".join(self.notes)[:NOTE_WIDTH],
        }


def _day(value, what: str, invoice_date: date | None, notes: list[str]) -> date | None:
    if value in (None, ""):
        return None
    text = str(value)
    day = as_date(text) if len(text) <= 40 and text.isprintable() else None
    if day is None:
        notes.append(f"The {what} {_shown(text)} is not a date; it was not kept.")
        return None
    if not _plausible(day, invoice_date):
        notes.append(f"The {what} {day.isoformat()} is too far from the invoice date; it was not kept.")
        return None
    return day


def _plausible(day: date, invoice_date: date | None) -> bool:
    anchor = invoice_date or date.today()
    return anchor - DUE_BEFORE <= day <= anchor + DUE_AFTER


def _percent(value, notes: list[str]) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        percent = parse_amount(value)
    except ValueError:
        notes.append(f"The discount percent {_shown(value)} is not a number; it was not kept.")
        return None
    if not 0 <= percent < 100:
        notes.append(f"A discount of {_shown(value)} % is not between 0 and 100; it was not kept.")
        return None
    return percent.quantize(Decimal("0.0001"))


def _text(value, notes: list[str]) -> str:
    text = " ".join(str(value if value is not None else "").split())
    if not text.isprintable():
        notes.append("The payment terms text holds control characters (such as a NUL byte); it was not kept.")
        return ""
    return text[:TERMS_WIDTH]


def _shown(value) -> str:
    return repr(date_formulas.printable(value))


def _days(value, notes: list[str], what: str) -> int | None:
    if value in (None, "") or isinstance(value, bool):
        return None
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():  # JSON 30.0
        text = str(int(value))
    if not (text.isascii() and text.isdecimal()) or len(text) > 4 or int(text) > MAX_DAYS:
        notes.append(f"The {what} {_shown(value)} is not a number of days; it was not kept.")
        return None
    return int(text)


def invoice_terms(rec: dict, invoice_date: date | None, vendor: VendorTerms | None) -> InvoiceTerms:
    """The terms an invoice record states; when it gives no due date, its vendor's ERP terms fill the gaps.

    ``rec`` keys (all optional): due_date, payment_terms, discount_percent, discount_due_date,
    discount_days (counted from the invoice date).
    """
    notes: list[str] = []
    terms = InvoiceTerms(notes=notes)
    terms.due_date = _day(rec.get("due_date"), "due date", invoice_date, notes)
    net_days = _days(rec.get("net_days"), notes, "net payment period")
    if terms.due_date is None and net_days is not None and invoice_date is not None:
        terms.due_date = invoice_date + timedelta(days=net_days)
    terms.payment_terms = _text(rec.get("payment_terms"), notes)
    terms.discount_percent = _percent(rec.get("discount_percent"), notes)
    terms.discount_due_date = _day(rec.get("discount_due_date"), "discount date", invoice_date, notes)
    days = _days(rec.get("discount_days"), notes, "discount period")
    if terms.discount_due_date is None and days is not None and invoice_date is not None:
        terms.discount_due_date = invoice_date + timedelta(days=days)
    if vendor is not None and terms.due_date is None:
        _from_vendor(terms, vendor, invoice_date)
    if not terms.discount_percent:  # 0 % or none: there is no discount to take
        terms.discount_percent, terms.discount_due_date = None, None
    elif terms.discount_due_date is None:
        notes.append("The invoice offers a discount but no date to pay by; it is not shown.")
        terms.discount_percent = None
    return terms


def _from_vendor(terms: InvoiceTerms, vendor: VendorTerms, invoice_date: date | None) -> None:
    """Fill what the invoice left open from the vendor's ERP terms: the due date, the terms (a note
    such as "30 dagar netto" is kept over the code), and the discount if the invoice states none."""
    terms.payment_terms = terms.payment_terms or vendor.code[:TERMS_WIDTH]
    if invoice_date is None:
        terms.notes.append(f"The invoice has no date, so the vendor's terms {vendor.code} give no due date.")
        return
    if vendor.due_formula:
        terms.due_date = _evaluated(vendor.due_formula, invoice_date, "due date", terms.notes)
    if terms.discount_percent is None and vendor.discount_percent and vendor.discount_formula:
        terms.discount_due_date = _evaluated(vendor.discount_formula, invoice_date, "discount date", terms.notes)
        terms.discount_percent = vendor.discount_percent if terms.discount_due_date else None


def _evaluated(formula: str, invoice_date: date, what: str, notes: list[str]) -> date | None:
    try:
        day = date_formulas.evaluate(formula, invoice_date)
    except date_formulas.FormulaError as exc:
        notes.append(f"No {what} from the vendor's payment terms: {exc}.")
        return None
    if not _plausible(day, invoice_date):
        notes.append(f"The vendor's payment terms give a {what} of {day.isoformat()}, too far away; not kept.")
        return None
    return day


def discount_amount(total: Decimal, percent: Decimal | None, currency: str) -> Decimal | None:
    """What taking the discount saves, in the currency's minor units."""
    if not percent or total is None:
        return None
    return quantize(abs(total) * percent / 100, currency)


def business_days_ahead(day: date, n: int) -> date:
    """The date ``n`` business days (Monday to Friday) after ``day``."""
    while n > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


def days_to_due(due: date | None, today: date) -> str:
    """ "due in 3 d", "due today", "overdue 2 d" (calendar days), or "" without a due date."""
    if due is None:
        return ""
    delta = (due - today).days
    if delta > 0:
        return f"due in {delta} d"
    if delta == 0:
        return "due today"
    return f"overdue {-delta} d"


def _percent_text(percent: Decimal) -> str:
    text = f"{percent:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def payment_outlook(
    *,
    due_date: date | None,
    discount_percent: Decimal | None,
    discount_due_date: date | None,
    total: Decimal,
    currency: str,
    paid: bool,
    today: date,
) -> dict:
    """What the invoice page says about paying: days to due, and the discount to take or lost."""
    out = {"to_due": "" if paid else days_to_due(due_date, today), "discount": ""}
    amount = discount_amount(total, discount_percent, currency)
    if paid or amount is None or discount_due_date is None:
        return out
    shown = f"{amount:,} {currency}"
    if today <= discount_due_date:
        out["discount"] = (
            f"Pay by {discount_due_date.isoformat()} to take the {_percent_text(discount_percent)} % discount "
            f"({shown}); lost if it waits past that date."
        )
        out["discount_open"] = True
    else:
        out["discount"] = f"Discount of {shown} lost on {(discount_due_date + timedelta(days=1)).isoformat()}."
        out["discount_open"] = False
    return out
