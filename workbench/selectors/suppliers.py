"""Reads of the supplier crosswalk and the ERP vendor master (the supplier-link screens, documents
arriving from the procurement suite or as e-invoices, and the matching that links them)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from workbench.due_dates import VendorTerms
from workbench.models import ExceptionItem, MasterDataLink, PaymentTerm, Supplier
from workbench.search import fold
from workbench.supplier_match import CERTAIN, LIKELY, CandidateIndex, Match, Party, match_parties, normalize_tax_id
from workbench.values import printable

OBJECT_TYPE = "supplier"
MATCH_CODE = "SUPPLIER_MATCH_UNCONFIRMED"
LINK = MasterDataLink.Status
IN_LIMIT = 900  # ids per IN (...) list: stays below SQLite's variable limit; above it, read the system's rows
SYSTEM_LABELS = {"coupa": "Coupa", "business_central": "Business Central", "einvoice": "E-invoice"}


def match_fingerprint(system: str, external_id: str) -> str:
    """The SUPPLIER_MATCH_UNCONFIRMED item of one external supplier."""
    return f"{MATCH_CODE}:{system}:{external_id}"[:200]


def system_label(system: str) -> str:
    return SYSTEM_LABELS.get(system, system.replace("_", " ").title())


def external_label(system: str, number: str, name: str, tax_id: str, country: str) -> str:
    bits = [f"number {number}"] if number else []
    bits.append(f"tax id {tax_id}" if tax_id else "no tax id")
    if country:
        bits.append(country)
    return f"{system_label(system)} supplier '{name or '(no name)'}' ({', '.join(bits)})"


def link_label(link: MasterDataLink) -> str:
    return external_label(link.system, link.external_number, link.external_name, link.tax_id, link.country)


# --- the ERP vendor master, prepared for matching ------------------------------------------------------


@lru_cache(maxsize=200_000)
def _vendor_country(tax_id: str) -> str:
    """The ERP copy has no address: a valid VAT id's prefix is the country the vendor is registered in."""
    canonical, valid = normalize_tax_id(tax_id)
    if valid and canonical[:2].isalpha():
        return "CH" if canonical.startswith("CHE") else {"EL": "GR"}.get(canonical[:2], canonical[:2])
    return ""


@dataclass(frozen=True)
class Vendor:
    pk: int
    entity_id: int
    entity_code: str
    code: str
    name: str
    tax_id: str
    country: str

    def describe(self) -> str:
        return f"ERP vendor {self.code} '{self.name}' ({self.entity_code})"


class ErpVendors:
    """All ERP vendors (one query), indexed by code and by the matcher's own candidate index.

    `match` hands `match_parties` only the vendors that share a key with the external records, so a
    page of 50 records costs about the same against 50 or 50,000 vendors; the index is the one the
    matcher uses itself (`CandidateIndex`), so the outcome is the one a full comparison gives.
    """

    def __init__(self, rows):
        self.vendors: list[Vendor] = []
        self.parties: list[Party] = []
        self.by_pk: dict[int, int] = {}
        self.by_code: dict[str, list[Vendor]] = {}
        for pk, entity_id, entity_code, code, name, tax_id in rows:
            vendor = Vendor(pk, entity_id, entity_code, code, name or "", tax_id or "", _vendor_country(tax_id or ""))
            self.by_pk[pk] = len(self.vendors)
            self.vendors.append(vendor)
            self.parties.append(Party(pk, vendor.name, vendor.country, vendor.tax_id, ""))
            self.by_code.setdefault(code, []).append(vendor)
        self.index = CandidateIndex(self.parties)

    @classmethod
    def load(cls, **filters) -> ErpVendors:
        return cls(
            Supplier.objects.filter(**filters)
            .order_by("entity__code", "code", "pk")
            .values_list("pk", "entity_id", "entity__code", "code", "name", "tax_id")
        )

    def get(self, pk) -> Vendor | None:
        position = self.by_pk.get(pk)
        return None if position is None else self.vendors[position]

    def by_key(self, number: str, tax_id: str, country: str) -> tuple[Vendor, list[str]] | None:
        """The vendor whose code is this number, when the tax ids do not contradict it."""
        for vendor in sorted(self.by_code.get(number, ()), key=lambda v: not (tax_id and v.tax_id)):
            theirs, ours = normalize_tax_id(vendor.tax_id, country)[0], normalize_tax_id(tax_id, country)[0]
            if theirs and ours and theirs != ours:
                continue
            evidence = f"same tax id {ours}" if theirs and ours else "no tax id to compare"
            return vendor, [f"same vendor number {number}", evidence]
        return None

    def match(self, parties: list[Party]) -> dict[object, Match]:
        """Each external party's best vendor; several parties may get the same vendor.

        The matcher gives a vendor to one party only, which suits pairing two lists but not a
        crosswalk (Coupa keeps duplicates: two records of one vendor must both find it). So after the
        page's one matcher run, a party that got nothing or less than certain while a vendor it could
        match went to another party is matched again on its own (rare: only contested parties).
        """
        if not parties:
            return {}
        candidates = {p.key: self.index.positions(p) for p in parties}
        everyone = sorted(set().union(*candidates.values()))
        found = {m.left: m for m in match_parties(parties, [self.parties[i] for i in everyone])}
        taken = {self.by_pk[m.right]: m.left for m in found.values()}
        for p in parties:
            m = found.get(p.key)
            if m is not None and m.certainty == CERTAIN:
                continue
            if not any(taken.get(i, p.key) != p.key for i in candidates[p.key]):
                continue
            own = match_parties([p], [self.parties[i] for i in sorted(candidates[p.key])])
            if own and (m is None or own[0].score > m.score):
                found[p.key] = own[0]
        return found


# --- reading the crosswalk ---------------------------------------------------------------------------------


def supplier_codes_for(system: str, values) -> dict[str, tuple[str, str]]:
    """External number or id -> (entity_code, ERP code), through confirmed links (a number wins over an id)."""
    values = [v for v in {str(v) for v in values} if v]
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(values), IN_LIMIT // 2):
        chunk = values[start : start + IN_LIMIT // 2]
        rows = (
            MasterDataLink.objects.filter(object_type=OBJECT_TYPE, system=system, status=LINK.CONFIRMED)
            .filter(Q(external_number__in=chunk) | Q(external_id__in=chunk))
            .values_list("external_id", "external_number", "entity_code", "code")
            .order_by("id")
        )
        by_id = {}
        for external_id, number, entity_code, code in rows:
            if number:
                found.setdefault(number, (entity_code, code))
            by_id.setdefault(external_id, (entity_code, code))
        for v in chunk:
            if v not in found and v in by_id:
                found[v] = by_id[v]
    return {v: found[v] for v in values if v in found}


def supplier_code_for(system: str, number_or_id: str) -> tuple[str, str] | None:
    """(entity_code, ERP code) of the external supplier with this number (or id), if a link is confirmed."""
    return supplier_codes_for(system, [number_or_id]).get(str(number_or_id))


def supplier_crosswalk(*, system: str, numbers) -> dict[str, str]:
    """For a page of documents: their supplier numbers the ERP does not know -> the linked ERP code.

    Two queries at most, whatever the page size.
    """
    numbers = {n for n in numbers if n}
    if not numbers:
        return {}
    unknown = numbers - set(Supplier.objects.filter(code__in=numbers).values_list("code", flat=True))
    return {n: code for n, (_entity, code) in supplier_codes_for(system, unknown).items()} if unknown else {}


_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]")


def supplier_for_tax_id(tax_id: str, *, entity=None) -> Supplier | None:
    """The ERP vendor with this tax id however either side typed it ("DE 136 695 976" = "DE136695976").

    One query: the forms an ERP keeps a tax id in (with or without country prefix, EIN with its dash)
    are asked for, and the answers are compared normalized.
    """
    canonical, _valid = normalize_tax_id(tax_id)
    if not canonical:
        return None
    prefix = canonical[:2] if canonical[:2].isalpha() else ""
    national = canonical[3:] if canonical.startswith("CHE") else canonical[len(prefix) :]
    raw = re.sub(r"\s", "", tax_id).upper()
    forms = {canonical, raw, _NOT_ALNUM.sub("", raw), national, national.removesuffix("MVA")}
    if prefix == "US" and len(national) == 9:
        forms.add(f"{national[:2]}-{national[2:]}")
    match = Q(tax_id__in=[f for f in forms if f])
    # Typed without its country prefix ("136695976"): the ERP's "DE136695976" is the same number.
    bare = not prefix and canonical.isdigit() and len(canonical) >= 8
    if bare:
        match |= Q(tax_id__endswith=canonical)
    qs = Supplier.objects.filter(match)
    if entity is not None:
        qs = qs.filter(entity=entity)
    for sup in qs.select_related("entity").order_by("entity__code", "code"):
        theirs = normalize_tax_id(sup.tax_id, prefix)[0]
        if (
            sup.tax_id.upper() == raw
            or theirs == canonical
            or (bare and theirs[2:] == canonical and theirs[:2].isalpha())
        ):
            return sup
    return None


def supplier_link_counts() -> dict[str, int]:
    counts = dict(
        MasterDataLink.objects.filter(object_type=OBJECT_TYPE)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {status: counts.get(status, 0) for status in LINK.values}


def supplier_link_list(*, statuses, q: str = "") -> QuerySet[MasterDataLink]:
    """Links of these statuses; waiting ones proposed first (likely before uncertain), then unmatched, then rejected."""
    qs = MasterDataLink.objects.filter(object_type=OBJECT_TYPE, status__in=list(statuses)).select_related("decided_by")
    q = printable(q, 100)
    if q:
        qs = qs.filter(
            Q(external_id__icontains=q)
            | Q(external_number__icontains=q)
            | Q(external_name__folded__contains=fold(q))
            | Q(tax_id__icontains=q)
            | Q(code__icontains=q)
        )
    rank = Case(
        When(status=LINK.PROPOSED, then=Value(0)),
        When(status=LINK.UNMATCHED, then=Value(1)),
        When(status=LINK.REJECTED, then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )
    first = Case(When(certainty=LIKELY, then=Value(0)), default=Value(1), output_field=IntegerField())
    return qs.annotate(rank=rank, first=first).order_by("rank", "first", "-score", "system", "external_name", "id")


def supplier_links_annotate(links) -> list[MasterDataLink]:
    """Attach each link's ERP vendor (`.vendor`) and exception item (`.item`): two queries for a page."""
    links = list(links)
    codes = {link.code for link in links if link.code}
    vendors = (
        {(s.entity.code, s.code): s for s in Supplier.objects.filter(code__in=codes).select_related("entity")}
        if codes
        else {}
    )
    items = (
        {
            i.fingerprint: i
            for i in ExceptionItem.objects.filter(
                fingerprint__in=[match_fingerprint(link.system, link.external_id) for link in links]
            )
        }
        if links
        else {}
    )
    for link in links:
        link.system_name = system_label(link.system)
        link.vendor = vendors.get((link.entity_code, link.code))
        link.item = items.get(match_fingerprint(link.system, link.external_id))
    return links


def vendor_terms_for(*, parties) -> dict[tuple[int, str], VendorTerms]:
    """(entity id, vendor code) -> the vendor's payment terms in the ERP, for a page of invoices.

    Two queries whatever the page size; a vendor without terms, or with a code the ERP's payment
    terms do not hold, is left out.
    """
    parties = {(e, c) for e, c in parties if e and c}
    if not parties:
        return {}
    codes = {}
    for entity_id, code, terms in Supplier.objects.filter(
        entity_id__in={e for e, _ in parties}, code__in={c for _, c in parties}
    ).values_list("entity_id", "code", "payment_terms_code"):
        if (entity_id, code) in parties and terms:
            codes[(entity_id, code)] = terms
    found = {
        (t.entity_id, t.code): VendorTerms(
            code=t.code,
            due_formula=t.due_date_calculation,
            discount_formula=t.discount_date_calculation,
            discount_percent=t.discount_percent,
        )
        for t in PaymentTerm.objects.filter(entity_id__in={e for e, _ in codes}, code__in=set(codes.values()))
    }
    return {party: found[(party[0], terms)] for party, terms in codes.items() if (party[0], terms) in found}
