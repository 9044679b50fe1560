"""Supplier matching across systems: ERP vendor master x procurement suppliers x e-invoice senders.

Pure Python (stdlib + python-stdnum, no Django, no database). The caller turns its records into
``Party`` objects (``key`` is whatever identifies the record on its side: a vendor number, a
Coupa id, a PEPPOL endpoint...), calls ``match_parties(left, right)`` and stores the result in a
crosswalk; ``certainty`` says whether a human has to confirm it.

Normalization
-------------

* ``normalize_tax_id(value, country)`` -> ``(canonical, valid)``. Unicode NFKC, upper case, every
  character that is not a letter or digit dropped. A leading two-letter prefix that is a VAT prefix
  (the EU member states incl. ``EL``/``GR`` and ``XI``, ``GB``, ``CH``, ``NO``), ``US``, or the given
  country wins over ``country``; otherwise ``country`` decides. Per country (validated with
  python-stdnum):

  - EU member states and ``XI``: ``stdnum.eu.vat`` on prefix + number; canonical ``DE136695976``
    (Greece is always ``EL...``, also when typed ``GR...``).
  - ``GB``: ``stdnum.gb.vat`` (the EU module no longer knows GB); canonical ``GB980780684``.
  - ``CH``: ``stdnum.ch.uid``; canonical ``CHE116281710`` (the MWST/TVA/IVA suffix is dropped, so
    the UID and the VAT number of one company are the same key).
  - ``NO``: ``stdnum.no.mva``; canonical ``NO995525828MVA`` (``995525828`` typed with country NO
    gives the same key).
  - ``US``: ``stdnum.us.ein``; canonical ``US123456789`` (``12-3456789`` and ``123456789`` agree).
  - other countries: ``stdnum.get_cc_module(cc, "vat")`` when stdnum has one (BR CNPJ, AU ABN,
    CA BN, ...); canonical ``cc + compact``. Without a module: ``cc + cleaned``, never valid.
  - no country and no known prefix: the cleaned value, never valid.

  stdnum's ``compact`` is only applied to valid numbers (it is not idempotent on junk: NL pads
  with zeros on every call); an invalid number keeps its cleaned form behind the country prefix.
  When a prefix and ``country`` disagree, the prefix is tried first and ``country`` second; the
  first valid reading wins, else the prefix's (invalid) reading is returned.
* ``normalize_iban(value)`` -> ``(canonical, valid)``: upper case, only letters and digits, a
  leading ``IBAN`` label dropped; validity per ``stdnum.iban`` (length per country + mod 97).
* ``normalize_name(value)`` -> a matching key (not for display): NFKC, casefold; ``ø æ œ ł đ ð þ ı``
  spelled out in ASCII, accents stripped (``é`` -> ``e``); dots and apostrophes removed
  (``L.L.C.`` -> ``llc``, ``S.p.A.`` -> ``spa``); ``&`` -> ``and``; any other non-alphanumeric ->
  space; then in every word ``ae``/``oe``/``ue`` (any run of ``e`` after ``a``/``o``/``u``) fold to
  ``a``/``o``/``u``, so ``Gebäude`` == ``Gebaeude`` == ``Gebaude`` (``ß`` is ``ss`` by casefold).
  Finally legal forms (``LEGAL_FORMS``: GmbH, AG, KG, SAS, SARL, SA, LLC, Inc, Corp, Ltd, BV, NV,
  AB, Oy, SpA, ... also spelled with spaces like ``S. A.``, plus ``&``/``and``/``co`` between them as in
  ``GmbH & Co. KG``) are stripped from the end, repeatedly, and a few (``LEADING_FORMS``: AB, Oy,
  Oyj, The) from the start. Words are joined by single spaces. A name that is only legal forms
  normalizes to ``""``, and an empty key never matches. The ae/oe/ue fold also touches ordinary
  words (``blue`` -> ``blu``); it is applied to both sides, so it only matters for names that differ
  by exactly such an ``e``.

All three functions are idempotent: ``f(f(x)) == f(x)`` (with the same country for tax ids).

Matching and scoring
--------------------

For each pair the evidence is:

* tax ids: both valid and equal (**strong**), both valid and different (**conflict**), equal but
  not both valid (**weak**: a reason, never a certain match);
* IBANs: both valid and equal (**strong**), equal but not both valid (**weak**);
* names: equal keys, the same set of words, or ``difflib`` ratio >= ``SIMILAR_NAME_RATIO`` (0.85);
* countries: compatible when equal or when either is unknown.

=================  ============================================================  ==============
certainty          rule (first that applies)                                     score
=================  ============================================================  ==============
``certain``        same valid tax id; or same valid IBAN and no tax id conflict  0.90, +0.05 if
                                                                                 tax id *and* IBAN
                                                                                 agree, +0.05 if
                                                                                 names equal
``uncertain``      tax id conflict with a same valid IBAN or equal names         as below
                   (reason "conflicting tax ids"); with only similar names or
                   nothing else, there is no match
``likely``         equal names, compatible countries                             0.70, +0.10 if
                                                                                 both countries
                                                                                 known (equal)
``uncertain``      equal names in different countries; similar names (ratio or   0.30 + 0.20 x
                   same words) in compatible countries; a weak (invalid) tax id  name ratio
                   or IBAN equality                                              + 0.05 per weak
                                                                                 id, + 0.05 for a
                                                                                 same valid IBAN
=================  ============================================================  ==============

Weak ids add +0.05 to a likely score too. ``reasons`` lists every piece of evidence found, in
this order: tax ids, IBANs (also "different IBANs: ..." when both are valid), names, countries. Scores are capped to their band (certain <= 1.0,
likely <= 0.89, uncertain <= 0.59), so a higher certainty always ranks first.

Assignment: candidates come from indexes on the canonical tax id, the canonical IBAN, the name
key, the sorted set of name words and each name word. Buckets keep at most ``MAX_BUCKET`` (200)
right parties, the first ones in input order (a tax id shared by more is junk data), and a word
found in more than ``MAX_WORD_BUCKET`` (50) right names ("services", "solutions") finds no
candidates at all (it still counts in the similarity). So each left party is compared with a
bounded number of right parties and the whole run is linear. All candidate pairs are then sorted
by (score desc, left position, right position) and taken greedily while both sides are free: each left gets its best available
right, or nothing, and no right is used twice. Same input, same output. ``match_parties`` returns
the matches in left input order. A party matched against a copy of its own list gets itself
(its own pair always has the highest score it can reach).

Not covered: names that share no word and differ in the first one (``Kontoso`` vs ``Contoso``
alone are not compared); IBANs shared by several suppliers (factoring, payment providers) still
give certain matches.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

import stdnum
from stdnum import iban as _iban
from stdnum.ch import uid as _ch_uid
from stdnum.eu import vat as _eu_vat
from stdnum.gb import vat as _gb_vat
from stdnum.no import mva as _no_mva
from stdnum.us import ein as _us_ein

__all__ = [
    "CERTAIN",
    "LIKELY",
    "UNCERTAIN",
    "Match",
    "Party",
    "match_parties",
    "normalize_iban",
    "normalize_name",
    "normalize_tax_id",
]

CERTAIN = "certain"
LIKELY = "likely"
UNCERTAIN = "uncertain"

SIMILAR_NAME_RATIO = 0.85
MAX_BUCKET = 200  # right parties per tax id / IBAN / name key bucket (the first ones in input order)
MAX_WORD_BUCKET = 50  # a name word in more right names than this is too common to find candidates

# --- tax ids ----------------------------------------------------------------------------------------------------

_EU_STATES = {cc.upper() for cc in _eu_vat.MEMBER_STATES}  # incl. GR and XI
_COUNTRY_ALIASES = {"EL": "GR", "UK": "GB"}
_PREFIXES = _EU_STATES | {"EL", "GB", "CH", "NO", "US"}
_NOT_ALNUM = re.compile(r"[^0-9A-Z]")


def _clean_code(value: str) -> str:
    return _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", value or "").upper())


def country_code(value: str) -> str:
    """An ISO 3166 alpha-2 country as the matcher reads it ("uk" -> "GB", "EL" -> "GR"), or ""."""
    cc = _clean_code(value)
    if len(cc) != 2 or not cc.isalpha():
        return ""
    return _COUNTRY_ALIASES.get(cc, cc)


def _read_tax_id(cc: str, body: str) -> tuple[str, bool, str]:
    """(canonical, valid, label) for ``body`` (cleaned, without prefix) read as a tax id of ``cc``."""
    if cc in _EU_STATES:
        prefix = "EL" if cc == "GR" else cc
        number = prefix + body
        if not _eu_vat.is_valid(number):
            return number, False, "VAT id"
        canonical = _clean_code(_eu_vat.compact(number))
        if canonical[:2] == "GR":
            canonical = "EL" + canonical[2:]
        return canonical, True, "VAT id"
    if cc == "GB":
        if not _gb_vat.is_valid(body):
            return "GB" + body, False, "VAT id"
        national = _clean_code(_gb_vat.compact(body))
        return "GB" + national.removeprefix("GB"), True, "VAT id"
    if cc == "CH":
        digits = body[1:] if body.startswith("E") else body
        for suffix in ("MWST", "TVA", "IVA"):
            if digits.endswith(suffix):
                digits = digits[: -len(suffix)]
                break
        canonical = "CHE" + digits
        return canonical, _ch_uid.is_valid(canonical), "VAT id"
    if cc == "NO":
        digits = body[:-3] if body.endswith("MVA") else body
        canonical = "NO" + digits + "MVA"
        return canonical, _no_mva.is_valid(digits + "MVA"), "VAT id"
    if cc == "US":
        return "US" + body, _us_ein.is_valid(body), "EIN"
    module = stdnum.get_cc_module(cc.lower(), "vat")
    if module is None:
        return cc + body, False, "tax id"
    try:
        valid = bool(module.is_valid(body))
    except Exception:  # a module that raises instead of saying False
        valid = False
    if not valid:
        return cc + body, False, "tax id"
    national = _clean_code(module.compact(body))
    return cc + national.removeprefix(cc), True, "tax id"


def _tax_id(value: str, country: str = "") -> tuple[str, bool, str]:
    cleaned = _clean_code(value)
    if not cleaned:
        return "", False, ""
    cc = country_code(country)
    head = cleaned[:2]
    prefix = _COUNTRY_ALIASES.get(head, head) if head.isalpha() else ""
    readings = []
    if prefix and (head in _PREFIXES or prefix == cc) and not (prefix == "US" and cc not in ("", "US")):
        readings.append((prefix, cleaned[2:]))
    if cc and (not readings or readings[0][0] != cc):
        readings.append((cc, cleaned))
    if not readings:
        return cleaned, False, "tax id"
    results = [_read_tax_id(c, body) for c, body in readings]
    for result in results:
        if result[1]:
            return result
    return results[0]


def normalize_tax_id(value: str, country: str = "") -> tuple[str, bool]:
    """Canonical tax id (``"DE136695976"``, ``"US123456789"``...) and whether stdnum says it is valid.

    ``country`` (ISO 3166 alpha-2, optional) says how to read a number typed without its prefix.
    Returns ``("", False)`` for an empty value.
    """
    canonical, valid, _label = _tax_id(value, country)
    return canonical, valid


# --- IBAN -------------------------------------------------------------------------------------------------------


def normalize_iban(value: str) -> tuple[str, bool]:
    """Canonical IBAN (``"DE89370400440532013000"``) and whether it is valid per ``stdnum.iban``."""
    cleaned = _clean_code(value)
    while cleaned.startswith("IBAN"):  # no country code starts with "IB"
        cleaned = cleaned[4:]
    return cleaned, bool(cleaned) and _iban.is_valid(cleaned)


# --- names ------------------------------------------------------------------------------------------------------

_LETTERS = str.maketrans(
    {
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ı": "i",
        "&": " and ",
        ".": None,
        "'": None,
        "\u2019": None,
        "`": None,
    }
)
_UMLAUT_FOLD = re.compile(r"([aou])e+")

# Written as typed; normalized (and split into words) at import.
LEGAL_FORMS = [
    # German-speaking
    "GmbH",
    "gGmbH",
    "mbH",
    "AG",
    "KG",
    "KGaA",
    "OHG",
    "GbR",
    "UG",
    "eG",
    "eK",
    "e.V.",
    "SE",
    # French, Belgian, Swiss, Luxembourgish
    "SA",
    "SAS",
    "S.A.S.",
    "SASU",
    "SARL",
    "S.A.R.L.",
    "EURL",
    "SNC",
    "SCA",
    "SCS",
    "SC",
    "SCOP",
    "SCI",
    "SPRL",
    "SRL",
    "Sàrl",
    # Italian, Spanish, Portuguese, Latin America
    "S.p.A.",
    "S.r.l.",
    "S.a.s.",
    "S.n.c.",
    "S.L.",
    "S.L.U.",
    "S.A.U.",
    "Lda",
    "Ltda",
    "S.A. de C.V.",
    "C.V.",
    "EIRELI",
    # Dutch, Nordic, Baltic, Central and Eastern Europe
    "B.V.",
    "N.V.",
    "V.O.F.",
    "C.V.",
    "AB",
    "Oy",
    "Oyj",
    "AS",
    "ASA",
    "A/S",
    "ApS",
    "I/S",
    "K/S",
    "hf",
    "ehf",
    "OÜ",
    "AS",
    "UAB",
    "SIA",
    "s.r.o.",
    "a.s.",
    "spol. s r.o.",
    "Sp. z o.o.",
    "S.A.",
    "d.o.o.",
    "d.d.",
    "Kft",
    "Zrt",
    "Nyrt",
    "Bt",
    "EOOD",
    "OOD",
    "OOO",
    "ZAO",
    "PAO",
    "S.R.L.",
    # English-speaking and Asia-Pacific
    "LLC",
    "L.L.C.",
    "LLP",
    "L.L.P.",
    "LP",
    "L.P.",
    "PLLC",
    "Inc",
    "Inc.",
    "Incorporated",
    "Corp",
    "Corp.",
    "Corporation",
    "Co",
    "Co.",
    "Company",
    "Ltd",
    "Ltd.",
    "Limited",
    "PLC",
    "Pty",
    "Pty Ltd",
    "Pte",
    "Bhd",
    "Sdn Bhd",
    "Pvt",
    "Private Limited",
    "KK",
    "GK",
    "Ltee",
    # connectors between stacked forms ("GmbH & Co. KG", "Smith & Co.")
    "&",
    "and",
    "und",
]
LEADING_FORMS = ["AB", "Oy", "Oyj", "The"]


def _fold_words(value: str) -> list[str]:
    text = unicodedata.normalize("NFKC", value or "").casefold().translate(_LETTERS)
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    text = unicodedata.normalize("NFKC", text).casefold().translate(_LETTERS)
    text = "".join(ch if ch.isalnum() else " " for ch in text)
    return [_UMLAUT_FOLD.sub(r"\1", word) for word in text.split()]


# "S.A." is also typed "S. A.": every dotted form also counts with a space after each dot.
_TRAILING = {tuple(_fold_words(spelling)) for form in LEGAL_FORMS for spelling in (form, form.replace(".", ". "))}
_TRAILING -= {()}
_LEADING = {tuple(_fold_words(form)) for form in LEADING_FORMS} - {()}
_MAX_FORM = max(len(form) for form in _TRAILING | _LEADING)


def _strip_forms(words: list[str]) -> list[str]:
    changed = True
    while changed and words:
        changed = False
        for size in range(min(_MAX_FORM, len(words)), 0, -1):
            if tuple(words[-size:]) in _TRAILING:
                words = words[:-size]
                changed = True
                break
            if tuple(words[:size]) in _LEADING:
                words = words[size:]
                changed = True
                break
    return words


def normalize_name(value: str) -> str:
    """Matching key for a company name: ``"CONTOSO HARDWARE, L.L.C."`` -> ``"contoso hardware"``.

    Case, accents, umlaut spellings (ä == ae == a), punctuation, spacing and legal forms do not
    matter. See the module docstring for the exact rules.
    """
    words = _fold_words(value)
    for _ in range(8):  # folding is idempotent, stripping runs to a fixed point; loop for exotic Unicode
        key = " ".join(_strip_forms(words))
        again = _fold_words(key)
        if again == key.split():
            break
        words = again
    return key


# --- matching ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Party:
    """A supplier as one system knows it; every field but ``key`` is as typed (may be empty)."""

    key: object
    name: str = ""
    country: str = ""
    tax_id: str = ""
    iban: str = ""


@dataclass(frozen=True)
class Match:
    """``left`` and ``right`` are the parties' keys; ``certainty`` is CERTAIN, LIKELY or UNCERTAIN."""

    left: object
    right: object
    score: float
    certainty: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class _Prepared:
    country: str
    tax_id: str
    tax_valid: bool
    tax_label: str
    iban: str
    iban_valid: bool
    name: str
    words: frozenset[str]


def _prepare(party: Party) -> _Prepared:
    tax_id, tax_valid, label = _tax_id(party.tax_id, party.country)
    iban, iban_valid = normalize_iban(party.iban)
    name = normalize_name(party.name)
    return _Prepared(
        country_code(party.country), tax_id, tax_valid, label, iban, iban_valid, name, frozenset(name.split())
    )


def _evaluate(a: _Prepared, b: _Prepared) -> tuple[float, str, tuple[str, ...]] | None:
    reasons: list[str] = []
    tax_same = tax_conflict = iban_same = False
    weak = 0
    if a.tax_id and a.tax_id == b.tax_id:
        if a.tax_valid and b.tax_valid:
            tax_same = True
            reasons.append(f"same {a.tax_label} {a.tax_id}")
        else:
            weak += 1
            reasons.append(f"same tax id {a.tax_id}, but not valid per stdnum")
    elif a.tax_valid and b.tax_valid:
        tax_conflict = True
        reasons.append(f"conflicting tax ids: {a.tax_id} vs {b.tax_id}")
    if a.iban and a.iban == b.iban:
        if a.iban_valid and b.iban_valid:
            iban_same = True
            reasons.append(f"same IBAN {a.iban}")
        else:
            weak += 1
            reasons.append(f"same IBAN {a.iban}, but not valid per stdnum")
    elif a.iban_valid and b.iban_valid:
        reasons.append(f"different IBANs: {a.iban} vs {b.iban}")

    countries_known = bool(a.country and b.country)
    countries_ok = not countries_known or a.country == b.country
    name_equal = bool(a.name) and a.name == b.name
    ratio = 0.0
    if name_equal:
        ratio = 1.0
        reasons.append(f"names equal after normalization: {a.name}")
    elif a.name and b.name and countries_ok:  # similar names only count within one country
        if a.words == b.words:
            ratio = max(SIMILAR_NAME_RATIO, difflib.SequenceMatcher(None, a.name, b.name).ratio())
            reasons.append(f"same words in names: {a.name} ~ {b.name}")
        else:
            matcher = difflib.SequenceMatcher(None, a.name, b.name)
            if matcher.real_quick_ratio() >= SIMILAR_NAME_RATIO and matcher.quick_ratio() >= SIMILAR_NAME_RATIO:
                ratio = matcher.ratio()
                if ratio >= SIMILAR_NAME_RATIO:
                    reasons.append(f"names similar ({ratio:.2f}): {a.name} ~ {b.name}")
                else:
                    ratio = 0.0
    name_similar = ratio >= SIMILAR_NAME_RATIO and not name_equal
    if countries_known and not countries_ok:
        reasons.append(f"countries differ: {a.country} vs {b.country}")

    if tax_same or (iban_same and not tax_conflict):
        score = 0.90 + 0.05 * (tax_same and iban_same) + 0.05 * name_equal
        return min(score, 1.0), CERTAIN, tuple(reasons)
    if tax_conflict:
        if not (iban_same or name_equal):
            return None
        return _uncertain(ratio, weak, iban_same), UNCERTAIN, tuple(reasons)
    if name_equal and countries_ok:
        score = 0.70 + 0.10 * countries_known + 0.05 * weak
        return min(score, 0.89), LIKELY, tuple(reasons)
    if name_equal or name_similar or weak:
        return _uncertain(ratio, weak, iban_same), UNCERTAIN, tuple(reasons)
    return None


def _uncertain(ratio: float, weak: int, iban_same: bool) -> float:
    return round(min(0.30 + 0.20 * ratio + 0.05 * weak + 0.05 * iban_same, 0.59), 4)


def _index_keys(p: _Prepared) -> list[tuple[str, object]]:
    keys: list[tuple[str, object]] = []
    if p.tax_id:
        keys.append(("tax", p.tax_id))
    if p.iban:
        keys.append(("iban", p.iban))
    if p.name:
        keys.append(("name", p.name))
        keys.append(("words", p.words))
        keys.extend(("word", word) for word in sorted(p.words))
    return keys


class CandidateIndex:
    """Parties indexed by tax id, IBAN, name key, word set and each name word, for finding the few
    worth comparing. Buckets are capped (MAX_BUCKET, the first in input order); a word found in more
    than MAX_WORD_BUCKET names is too common to find anything. The matcher and the ERP vendor index
    (workbench/selectors/suppliers.py) use this one index, so both find the same candidates."""

    def __init__(self, parties: list[Party]):
        self.prepared = [_prepare(p) for p in parties]
        index: dict[tuple[str, object], list[int]] = {}
        for j, p in enumerate(self.prepared):
            for key in _index_keys(p):
                bucket = index.setdefault(key, [])
                if len(bucket) <= MAX_BUCKET:
                    bucket.append(j)
        for key, bucket in index.items():
            if key[0] == "word" and len(bucket) > MAX_WORD_BUCKET:
                bucket.clear()
            else:
                del bucket[MAX_BUCKET:]
        self._index = index

    def positions(self, party: Party | _Prepared) -> set[int]:
        """Positions (in the indexed list) of the parties that share a key with `party`."""
        prepared = party if isinstance(party, _Prepared) else _prepare(party)
        found: set[int] = set()
        for key in _index_keys(prepared):
            found.update(self._index.get(key, ()))
        return found


def match_parties(left: list[Party], right: list[Party]) -> list[Match]:
    """Best match for each left party (or none), no right party used twice; in left input order.

    Linear in ``len(left) + len(right)`` (indexes on tax id, IBAN and name words, capped buckets)
    plus sorting the candidate pairs. Deterministic. Keys are returned as given, never hashed.
    """
    lefts = [_prepare(p) for p in left]
    index = CandidateIndex(right)
    rights = index.prepared
    candidates: list[tuple[float, int, int, str, tuple[str, ...]]] = []
    for i, a in enumerate(lefts):
        for j in sorted(index.positions(a)):
            found = _evaluate(a, rights[j])
            if found is not None:
                score, certainty, reasons = found
                candidates.append((round(score, 4), i, j, certainty, reasons))

    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    taken_left: dict[int, Match] = {}
    taken_right: set[int] = set()
    for score, i, j, certainty, reasons in candidates:
        if i in taken_left or j in taken_right:
            continue
        taken_left[i] = Match(left[i].key, right[j].key, score, certainty, reasons)
        taken_right.add(j)
    return [taken_left[i] for i in sorted(taken_left)]
