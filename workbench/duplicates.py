"""Duplicate supplier invoices: normalized invoice numbers and an O(1) index.

Pure Python (stdlib only). Decisions:

* ``normalize_invoice_number``: Unicode NFKC + casefold (so full-width
  characters, ligatures and case do not matter; any Unicode decimal digit
  counts as its ASCII digit); then every run of digits loses its leading zeros
  (a run of only zeros becomes "0"); then spaces (any whitespace), dashes (all
  Unicode dash punctuation, the minus sign, the soft hyphen), dots, slashes
  (both ways) and underscores are dropped; then the leading zeros of the digit
  runs that dropping joined up are stripped again. Runs are taken between
  separators first, so "2024/001" == "2024-1" == "20241"; but "2024001" is a
  different number. The second pass makes the function idempotent
  ("0-5" -> "5", never "05").
* ``DuplicateIndex.check`` reports, for an invoice, each indexed invoice with
  a different key that has
  - the same supplier and the same normalized number: ``"DUPLICATE"``
    (skipped when the normalized number is empty: "no number" is not a match);
  - a different supplier and the same amount, currency and date:
    ``"POSSIBLE_DUPLICATE"`` (same supplier + amount + date with a different
    number is *not* reported).
  Suppliers are compared exactly (they are identifiers), currencies
  case-insensitively, amounts by value (100.0 == 100.00). Results come in
  insertion order, DUPLICATEs first. Credit notes are out of scope.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

DUPLICATE = "DUPLICATE"
POSSIBLE_DUPLICATE = "POSSIBLE_DUPLICATE"

# ASCII separators (incl. every ASCII whitespace) + the non-"Pd" dash lookalikes; other
# Unicode whitespace and dash punctuation are dropped by category.
_SEPARATORS = {ord(c): None for c in "./\\_-\u2212\u00ad" + "".join(chr(i) for i in range(128) if chr(i).isspace())}
_DIGITS_RE = re.compile(r"[0-9]+")


def _strip_zeros(m: re.Match) -> str:
    return m.group().lstrip("0") or "0"


def _is_separator(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) == "Pd"


def _ascii_digits(s: str) -> str:
    if s.isascii():
        return s
    out = []
    for ch in s:
        if not ch.isascii() and unicodedata.category(ch) == "Nd":
            out.append(str(unicodedata.decimal(ch)))
        else:
            out.append(ch)
    return "".join(out)


def _once(s: str) -> str:
    s = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", s).casefold())
    s = _ascii_digits(s)
    s = _DIGITS_RE.sub(_strip_zeros, s)
    s = s.translate(_SEPARATORS)
    if not s.isascii():
        s = "".join(ch for ch in s if not _is_separator(ch))
    s = _DIGITS_RE.sub(_strip_zeros, s)
    # Dropping separators can bring combining marks next to new base letters.
    return unicodedata.normalize("NFKC", s) if not s.isascii() else s


def normalize_invoice_number(s: str) -> str:
    """Canonical form of a supplier invoice number for duplicate detection."""
    out = _once(s)
    if not out.isascii():  # exotic Unicode: iterate to a fixed point (idempotence)
        for _ in range(4):
            again = _once(out)
            if again == out:
                break
            out = again
    return out


@dataclass(frozen=True, slots=True)
class InvoiceKey:
    key: object
    supplier: str
    number: str
    amount: Decimal
    currency: str
    date: str  # YYYY-MM-DD


class DuplicateIndex:
    """Index of existing invoices; ``check`` is two dict lookups plus the hits."""

    __slots__ = ("_by_number", "_by_amount", "_count")

    def __init__(self, invoices=()):
        self._by_number: dict[tuple[str, str], list[InvoiceKey]] = {}
        self._by_amount: dict[tuple[Decimal, str, str], list[InvoiceKey]] = {}
        self._count = 0
        for k in invoices:
            self.add(k)

    def __len__(self) -> int:
        return self._count

    @staticmethod
    def _number_key(k: InvoiceKey) -> tuple[str, str] | None:
        number = normalize_invoice_number(k.number or "")
        return (k.supplier, number) if number else None

    @staticmethod
    def _amount_key(k: InvoiceKey) -> tuple[Decimal, str, str]:
        return (k.amount, (k.currency or "").upper(), k.date)

    def add(self, k: InvoiceKey) -> None:
        nk = self._number_key(k)
        if nk is not None:
            self._by_number.setdefault(nk, []).append(k)
        self._by_amount.setdefault(self._amount_key(k), []).append(k)
        self._count += 1

    def check(self, k: InvoiceKey) -> list[tuple[str, InvoiceKey]]:
        hits: list[tuple[str, InvoiceKey]] = []
        nk = self._number_key(k)
        if nk is not None:
            for other in self._by_number.get(nk, ()):
                if other.key != k.key:
                    hits.append((DUPLICATE, other))
        for other in self._by_amount.get(self._amount_key(k), ()):
            if other.supplier != k.supplier and other.key != k.key:
                hits.append((POSSIBLE_DUPLICATE, other))
        return hits
