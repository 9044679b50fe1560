"""Supplier crosswalk: each external supplier (a Coupa supplier...) linked to the ERP vendor it is.

The ERP owns the vendor master (`Supplier`); nothing here writes it. A refresh matches a page of
external supplier records against all ERP vendors and keeps one `MasterDataLink` per external record:

1. A link a person decided (``decided_at`` set: confirmed or rejected) is never changed by a refresh
   (only its copy of the external record's number, name, tax id, IBAN and country is kept current).
   So a rejected pair is never proposed again, and a person's pick stays.
2. The external ``number`` equals an ERP vendor code and the tax ids agree (or one is blank):
   confirmed by key.
3. Otherwise `match_parties` (tax id, IBAN, normalized name): certain -> confirmed; likely or
   uncertain -> proposed, with a SUPPLIER_MATCH_UNCONFIRMED item for a person; no candidate ->
   unmatched, with an item too. Automatic outcomes are re-evaluated on every refresh: when the
   evidence changes, so does the link, and its item is raised or resolved to match.

Documents use confirmed links through `supplier_crosswalk` / `supplier_code_for`: a number the
ERP does not know becomes the linked vendor's code.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache

from django.db import transaction
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from workbench.errors import InvalidTransition, StaleUpdate, WorkbenchError
from workbench.models import (
    Document,
    DocumentEvent,
    DocumentLine,
    ExceptionEvent,
    ExceptionItem,
    MasterDataLink,
    Supplier,
)
from workbench.models.exceptions import ACTIVE_STATUSES, Status
from workbench.rules import CODES
from workbench.services.exception_items import (
    exception_item_raise,
    exception_item_transition,
    exception_items_create,
    search_text,
)
from workbench.supplier_match import (
    CERTAIN,
    LIKELY,
    MAX_BUCKET,
    MAX_WORD_BUCKET,
    Match,
    Party,
    match_parties,
    normalize_name,
    normalize_tax_id,
)

OBJECT_TYPE = "supplier"
CODE = "SUPPLIER_MATCH_UNCONFIRMED"
LINK = MasterDataLink.Status
WAITING = (LINK.PROPOSED, LINK.UNMATCHED, LINK.REJECTED)
IN_LIMIT = 900  # ids per IN (...) list: stays below SQLite's variable limit; above it, read the system's rows
SYSTEM_LABELS = {"coupa": "Coupa", "business_central": "Business Central", "einvoice": "E-invoice"}


class UnknownVendor(WorkbenchError):
    """The vendor a person picked is not in the ERP's vendor master."""


def fingerprint(system: str, external_id: str) -> str:
    return f"{CODE}:{system}:{external_id}"[:200]


def system_label(system: str) -> str:
    return SYSTEM_LABELS.get(system, system.replace("_", " ").title())


def _s(value, n: int) -> str:
    return "" if value is None else clean(str(value))[:n]


def clean(text: str) -> str:
    """Printable text only (a NUL byte would fail on PostgreSQL), trimmed."""
    return "".join(ch for ch in text if ch.isprintable()).strip()


def _country(value) -> str:
    cc = _s(value, 10).upper()
    return cc if len(cc) == 2 and cc.isalpha() else ""


# --- the ERP vendor master, prepared for matching ------------------------------------------------------


@lru_cache(maxsize=200_000)
def _keys(name: str, tax_id: str) -> tuple[str, str, str]:
    """(canonical tax id, country, name key) of an ERP vendor; memoized on the values, so never stale."""
    canonical, valid = normalize_tax_id(tax_id)
    # The ERP copy has no address: a valid VAT id's prefix is the country the vendor is registered in.
    country = ""
    if valid and canonical[:2].isalpha():
        country = "CH" if canonical.startswith("CHE") else {"EL": "GR"}.get(canonical[:2], canonical[:2])
    return canonical, country, normalize_name(name)


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
    """All ERP vendors (one query), indexed by code, tax id and name words.

    `match` hands `match_parties` only the vendors that share a key with the external records, so a
    page of 50 records costs about the same against 50 or 50,000 vendors. The keys are those the matcher
    indexes itself (tax id, name key, word set, each word; over-common words find nothing), so the
    outcome is the one a full comparison gives.
    """

    def __init__(self, rows):
        self.vendors: list[Vendor] = []
        self.parties: list[Party] = []
        self.by_pk: dict[int, int] = {}
        self.by_code: dict[str, list[Vendor]] = {}
        self.index: dict[tuple, list[int]] = {}
        for pk, entity_id, entity_code, code, name, tax_id in rows:
            canonical, country, key = _keys(name or "", tax_id or "")
            vendor = Vendor(pk, entity_id, entity_code, code, name or "", tax_id or "", country)
            position = len(self.vendors)
            self.vendors.append(vendor)
            self.parties.append(Party(pk, vendor.name, country, vendor.tax_id, ""))
            self.by_pk[pk] = position
            self.by_code.setdefault(code, []).append(vendor)
            for k in _index_keys(canonical, key):
                bucket = self.index.setdefault(k, [])
                if len(bucket) <= MAX_WORD_BUCKET if k[0] == "word" else len(bucket) < MAX_BUCKET:
                    bucket.append(position)

    @classmethod
    def load(cls, **filters) -> ErpVendors:
        return cls(Supplier.objects.filter(**filters).order_by("entity__code", "code", "pk")
                   .values_list("pk", "entity_id", "entity__code", "code", "name", "tax_id"))

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

    def _positions(self, p: Party) -> set[int]:
        found: set[int] = set()
        for k in _index_keys(normalize_tax_id(p.tax_id, p.country)[0], normalize_name(p.name)):
            bucket = self.index.get(k, ())
            if not (k[0] == "word" and len(bucket) > MAX_WORD_BUCKET):
                found.update(bucket)
        return found

    def match(self, parties: list[Party]) -> dict[object, Match]:
        """Each external party's best vendor; several parties may get the same vendor.

        The matcher gives a vendor to one party only, which suits pairing two lists but not a
        crosswalk (Coupa keeps duplicates: two records of one vendor must both find it). So after the
        page's one matcher run, a party that got nothing or less than certain while a vendor it could
        match went to another party is matched again on its own (rare: only contested parties).
        """
        if not parties:
            return {}
        candidates = {p.key: self._positions(p) for p in parties}
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


def _index_keys(tax: str, name: str) -> list[tuple]:
    keys: list[tuple] = [("tax", tax)] if tax else []
    if name:
        words = name.split()
        keys += [("name", name), ("words", frozenset(words))] + [("word", w) for w in sorted(set(words))]
    return keys


# --- messages --------------------------------------------------------------------------------------------


def _external(system: str, number: str, name: str, tax_id: str, country: str) -> str:
    bits = [f"number {number}"] if number else []
    bits.append(f"tax id {tax_id}" if tax_id else "no tax id")
    if country:
        bits.append(country)
    return f"{system_label(system)} supplier '{name or '(no name)'}' ({', '.join(bits)})"


def _evidence(reasons) -> str:
    short = []
    for r in reasons:
        if r.startswith("names equal"):
            short.append("same name")
        elif r.startswith("same words in names"):
            short.append("same words in the name")
        elif r.startswith("names similar"):
            short.append("similar name " + r.removeprefix("names similar ").split(":")[0])
        else:
            short.append(r)
    return ", ".join(short) or "no evidence"


def _link_external(link: MasterDataLink) -> str:
    return _external(link.system, link.external_number, link.external_name, link.tax_id, link.country)


def _proposal_message(link: MasterDataLink, vendor: Vendor | None) -> str:
    if link.status == LINK.UNMATCHED or vendor is None:
        return (f"{_link_external(link)}: no ERP vendor found by tax id, IBAN or name; "
                "pick the vendor, or create it in the ERP first.")
    return f"{_link_external(link)} may be {vendor.describe()}: {_evidence(link.reasons)}; confirm or pick another."


# --- refresh ---------------------------------------------------------------------------------------------


SNAPSHOT = ["external_number", "external_name", "tax_id", "iban", "country"]
DECISION = ["entity_code", "code", "status", "certainty", "score", "reasons"]


def _links_of(system: str, external_ids: list[str]) -> dict[str, MasterDataLink]:
    qs = MasterDataLink.objects.filter(object_type=OBJECT_TYPE, system=system)
    if len(external_ids) <= IN_LIMIT:
        qs = qs.filter(external_id__in=external_ids)
    return {link.external_id: link for link in qs}


@transaction.atomic
def supplier_links_refresh(*, system: str, records: list[dict], connection=None,
                           vendors: ErpVendors | None = None) -> dict[str, int]:
    """Match external supplier records against the ERP vendor master and keep the crosswalk.

    Records: ``external_id``, ``number``, ``name``, ``tax_id``, ``iban``, ``country``. Linear: one
    query for the ERP vendors, one for the existing links, bulk writes. Returns counts per outcome.
    A caller refreshing page after page passes `vendors` (`ErpVendors.load()`, once per run): the
    vendor master is then read and indexed once, not per page.
    """
    counts: Counter[str] = Counter()
    recs: dict[str, dict] = {}
    for r in records:
        external_id = _s(r.get("external_id"), 128)
        if external_id:
            recs[external_id] = r
        else:
            counts["skipped"] += 1
    if not recs:
        return dict(counts)
    vendors = vendors if vendors is not None else ErpVendors.load()
    links = _links_of(system, list(recs))
    now = timezone.now()

    snapshots: dict[str, dict] = {}
    to_match: list[Party] = []
    outcome: dict[str, tuple[str, Vendor | None, str, float, list[str]]] = {}
    for external_id, r in recs.items():
        snap = {"external_number": _s(r.get("number"), 64), "external_name": _s(r.get("name"), 200),
                "tax_id": _s(r.get("tax_id"), 40), "iban": _s(r.get("iban"), 40), "country": _country(r.get("country"))}
        snapshots[external_id] = snap
        link = links.get(external_id)
        if link is not None and link.decided_at is not None:
            continue
        keyed = vendors.by_key(snap["external_number"], snap["tax_id"], snap["country"]) if snap["external_number"] else None
        if keyed:
            outcome[external_id] = (LINK.CONFIRMED, keyed[0], CERTAIN, 1.0, keyed[1])
        else:
            to_match.append(Party(external_id, snap["external_name"], snap["country"], snap["tax_id"], snap["iban"]))
    matches = vendors.match(to_match)
    for p in to_match:
        m = matches.get(p.key)
        if m is None:
            outcome[p.key] = (LINK.UNMATCHED, None, "", 0.0, [])
        else:
            status = LINK.CONFIRMED if m.certainty == CERTAIN else LINK.PROPOSED
            outcome[p.key] = (status, vendors.get(m.right), m.certainty, m.score, list(m.reasons))

    new, changed, decided_changed = [], [], []
    for external_id, snap in snapshots.items():
        link = links.get(external_id)
        if link is not None and link.decided_at is not None:
            counts["decided"] += 1
            if any(getattr(link, f) != v for f, v in snap.items()):
                for f, v in snap.items():
                    setattr(link, f, v)
                link.updated_at = now
                decided_changed.append(link)
            continue
        status, vendor, certainty, score, reasons = outcome[external_id]
        counts[str(status)] += 1
        values = {**snap, "status": status, "entity_code": vendor.entity_code if vendor else "",
                  "code": vendor.code if vendor else "", "certainty": certainty,
                  "score": Decimal(str(round(score, 3))), "reasons": reasons}
        if link is None:
            links[external_id] = MasterDataLink(object_type=OBJECT_TYPE, system=system, external_id=external_id, **values)
            new.append(links[external_id])
        elif any(getattr(link, f) != v for f, v in values.items()):
            for f, v in values.items():
                setattr(link, f, v)
            link.updated_at = now
            changed.append(link)
        else:
            counts["unchanged"] += 1
    if new:
        MasterDataLink.objects.bulk_create(new, batch_size=500)
        if any(link.pk is None for link in new):  # a database that does not return ids from bulk inserts
            ids = _links_of(system, [link.external_id for link in new])
            for link in new:
                link.pk = link.id = ids[link.external_id].pk
    # Only links nobody decided meanwhile: a person's confirm between our read and this write wins.
    MasterDataLink.objects.filter(decided_at__isnull=True).bulk_update(changed, [*SNAPSHOT, *DECISION, "updated_at"],
                                                                       batch_size=500)
    MasterDataLink.objects.bulk_update(decided_changed, [*SNAPSHOT, "updated_at"], batch_size=500)
    counts.update(created=len(new), updated=len(changed))

    wanted, settled = {}, {}
    for external_id, (status, vendor, _c, _s2, reasons) in outcome.items():
        link = links[external_id]
        fp = fingerprint(system, external_id)
        if status == LINK.CONFIRMED:
            settled[fp] = f"Matched automatically to {vendor.describe()}: {_evidence(reasons)}."
        else:
            wanted[fp] = (link, vendor)
    raised, resolved = _items_sync(system=system, connection=connection, wanted=wanted, settled=settled, now=now)
    counts.update(items_raised=raised, items_resolved=resolved)
    # Only links this refresh changed: an unchanged one was compared when it last changed.
    raised, resolved = _tax_id_conflicts(system=system, links=[*new, *changed, *decided_changed], vendors=vendors,
                                         connection=connection)
    counts.update(conflicts_raised=raised, conflicts_resolved=resolved)
    # A link the evidence now confirms reaches the documents that waited for it, as a person's confirm does.
    counts.update(documents_updated=supplier_links_apply(links=[*new, *changed]))
    return dict(counts)


def _tax_id_conflicts(*, system: str, links: list[MasterDataLink], vendors: ErpVendors, connection) -> tuple[int, int]:
    """The ERP owns a vendor's tax id. A linked external supplier that says otherwise is shown as an
    OWNERSHIP_CONFLICT (as master data from a non-owner is), never written to the vendor master.

    One item per link (two Coupa suppliers linked to one vendor are two questions). An item
    resolves itself once both say the same (compared normalized: "DE 136 695 976" = "DE136695976"),
    or once its link no longer points at that vendor (re-pointed, rejected, unmatched).
    Returns (raised, resolved)."""
    from workbench.models import Connection
    from workbench.services import ownership

    links = [link for link in links if link.pk]
    if not links:
        return 0, 0
    confirmed = [link for link in links if link.status == LINK.CONFIRMED and link.code]
    source = connection.role if connection is not None else Connection.Role.PROCUREMENT.value
    owner = ownership.Guard.for_source("supplier", ["tax_id"], source).guarded.get("tax_id") if confirmed else None
    source_name = connection.name if connection is not None else system_label(system)
    raised: set[str] = set()
    for link in confirmed if owner else []:  # no owner: the sender owns tax ids now, or the ERP is not connected
        vendor = next((v for v in vendors.by_code.get(link.code, []) if v.entity_code == link.entity_code), None)
        if vendor is None:
            continue
        theirs, ours = normalize_tax_id(link.tax_id)[0], normalize_tax_id(vendor.tax_id)[0]
        if not theirs or not ours or theirs == ours:
            continue
        fp = ownership.fingerprint("supplier", link.entity_code, link.code, "tax_id",
                                   f"{source}:{link.system}:{link.external_id}")
        exception_item_raise(
            code=ownership.CODE, fp=fp, connection=connection,
            message=(f"{source_name} has tax id {link.tax_id!r} for supplier '{link.external_name}' "
                     f"({link.external_number or link.external_id}), which is linked to "
                     f"{vendor.describe()}; {ownership.role_label(owner)} owns the tax id and says {vendor.tax_id!r}. "
                     "The ERP's value is kept: check which is right before paying."),
            detail={"object": "supplier", "entity": link.entity_code, "code": link.code, "field": "tax_id",
                    "current": vendor.tax_id, "incoming": link.tax_id, "source": source, "source_name": source_name,
                    "owner": owner, "link": link.pk},
            root_cause=f"supplier.tax_id from {source}",
            search_extra=f"{link.entity_code} {link.code} {vendor.name} {link.external_name} tax_id")
        raised.add(fp)
    return len(raised), _tax_id_conflicts_close(links, keep=raised)


def _tax_id_conflicts_close(links: list[MasterDataLink], keep: set[str] = frozenset()) -> int:
    """Resolve the tax id conflicts of these links, except those just raised (`keep`)."""
    from workbench.services import ownership
    from workbench.services.exception_items import exception_items_resolve

    stale = [i for i in ownership.active_conflicts("supplier").filter(
        detail__field="tax_id", detail__link__in=[link.pk for link in links]) if i.fingerprint not in keep]
    return exception_items_resolve(items=stale, action="rule_passed",
                                   reason="The systems agree on this value now, or the link no longer "
                                          "points at this vendor.") if stale else 0


def _item_detail(link: MasterDataLink, vendor: Vendor | None) -> dict:
    return {"system": link.system, "external_id": link.external_id, "external_number": link.external_number,
            "link": link.pk, "status": link.status, "entity_code": vendor.entity_code if vendor else "",
            "code": vendor.code if vendor else "", "certainty": link.certainty, "score": str(link.score)}


def _search_extra(link: MasterDataLink, vendor: Vendor | None) -> str:
    parts = [link.system, link.external_id, link.external_number, link.external_name, link.tax_id]
    if vendor:
        parts += [vendor.code, vendor.name]
    return " ".join(p for p in parts if p).lower()


def _items_sync(*, system: str, connection, wanted: dict, settled: dict[str, str], now) -> tuple[int, int]:
    """Raise or update the items of links that wait for a person; resolve those whose link settled.

    Bulk for the common cases (new items, changed words); one transition per reopened or resolved item.
    """
    fps = [*wanted, *settled]
    if not fps:
        return 0, 0
    qs = ExceptionItem.objects.filter(code=CODE)
    qs = qs.filter(fingerprint__in=fps) if len(fps) <= IN_LIMIT else qs.filter(fingerprint__startswith=f"{CODE}:{system}:")
    existing = {i.fingerprint: i for i in qs.only("id", "fingerprint", "message", "status", "correlation_id")}
    spec = CODES[CODE]
    new, reworded, reopen = [], [], []
    for fp, (link, vendor) in wanted.items():
        message = _proposal_message(link, vendor)
        search = f"{search_text(CODE, message, None, connection)} {_search_extra(link, vendor)}".strip()
        item = existing.get(fp)
        if item is None:
            new.append(ExceptionItem(
                fingerprint=fp, code=CODE, category=spec.category, kind=spec.kind, severity=spec.severity,
                status=Status.OPEN, message=message, connection=connection, entity_id=vendor.entity_id if vendor else None,
                amount_at_risk=0, currency="USD", owner_team=spec.owner_team, detail=_item_detail(link, vendor),
                search=search, opened_at=now, sla_due_at=now + timedelta(hours=spec.sla_hours)))
            continue
        if item.message == message and item.status in ACTIVE_STATUSES:
            continue
        item.message, item.search, item.detail, item.updated_at = message, search, _item_detail(link, vendor), now
        item.entity_id = vendor.entity_id if vendor else None
        reworded.append(item)
        if item.status not in ACTIVE_STATUSES:
            reopen.append(item)
    exception_items_create(items=new, now=now)
    ExceptionItem.objects.bulk_update(reworded, ["message", "search", "detail", "entity", "updated_at"], batch_size=500)
    for item in reopen:
        exception_item_transition(item=item, to=Status.OPEN, reason=item.message, action="reopened")
    resolved = 0
    for fp, reason in settled.items():
        item = existing.get(fp)
        if item is not None and item.status in ACTIVE_STATUSES:
            exception_item_transition(item=item, to=Status.RESOLVED, reason=reason, action="matched")
            resolved += 1
    return len(new) + len(reopen), resolved


# --- a person's decisions ------------------------------------------------------------------------------------


def _who(actor) -> str:
    return actor.get_username() if actor is not None else "someone"


def _vendor_for(*, entity_code: str | None, code: str) -> Supplier:
    code, entity_code = clean(code or "")[:40], clean(entity_code or "")[:20]
    if not code:
        raise UnknownVendor("Enter the ERP vendor number to link to.")
    found = list(Supplier.objects.filter(code=code, **({"entity__code": entity_code} if entity_code else {}))
                 .select_related("entity").order_by("entity__code")[:5])
    if not found:
        where = f" in {entity_code}" if entity_code else ""
        raise UnknownVendor(f"'{code}' is not an ERP vendor{where}. Pick a vendor number from the ERP's vendor master.")
    if len(found) > 1:
        raise UnknownVendor(f"Vendor {code} exists in {', '.join(s.entity.code for s in found)}: choose the entity too.")
    return found[0]


def _claim(link: MasterDataLink, **changes) -> None:
    """Compare-and-set on what the person saw: a refresh or another person in between makes it stale."""
    now = timezone.now()
    seen = MasterDataLink.objects.filter(pk=link.pk, status=link.status, entity_code=link.entity_code, code=link.code,
                                         decided_at=link.decided_at)
    if seen.update(**changes, updated_at=now) != 1:
        raise StaleUpdate("This supplier link was changed meanwhile (by a sync or by someone else). Reload and check it again.")
    for k, v in changes.items():
        setattr(link, k, v)
    link.updated_at = now


def _open_item(link: MasterDataLink) -> ExceptionItem | None:
    return ExceptionItem.objects.filter(fingerprint=fingerprint(link.system, link.external_id)).first()


@transaction.atomic
def supplier_link_confirm(*, link: MasterDataLink, actor, entity_code: str | None = None,
                          code: str | None = None) -> MasterDataLink:
    """Confirm the proposed vendor (no `code`), or link the external supplier to the vendor a person picked."""
    if code is not None:
        sup = _vendor_for(entity_code=entity_code, code=code)
        picked = (sup.entity.code, sup.code) != (link.entity_code, link.code) or link.status != LINK.PROPOSED
        name = sup.name
    elif link.status == LINK.PROPOSED and link.code:
        sup = Supplier.objects.filter(entity__code=link.entity_code, code=link.code).select_related("entity").first()
        if sup is None:
            raise UnknownVendor(f"ERP vendor {link.code} ({link.entity_code}) is no longer in the ERP's vendor master; "
                                "pick another.")
        picked, name = False, sup.name
    else:
        raise InvalidTransition("There is no proposed vendor to confirm: pick the ERP vendor.")
    now = timezone.now()
    vendor = f"ERP vendor {sup.code} '{name}' ({sup.entity.code})"
    note = (f"{_who(actor)} picked {sup.code} ({sup.entity.code})" if picked
            else f"confirmed by {_who(actor)}")
    _claim(link, status=LINK.CONFIRMED, entity_code=sup.entity.code, code=sup.code, decided_by=actor, decided_at=now,
           reasons=[*(link.reasons if not picked else []), note], **({"certainty": "", "score": 0} if picked else {}))
    item = _open_item(link)
    if item is not None and item.is_active:
        exception_item_transition(item=item, to=Status.RESOLVED, actor=actor, action="confirmed",
                                  reason=f"{_who(actor)} linked {_link_external(link)} to {vendor}.")
    link.documents_updated = supplier_links_apply(links=[link], actor=actor)
    from sync import push

    _tax_id_conflicts(system=link.system, links=[link], vendors=ErpVendors.load(pk=sup.pk),
                      connection=push.system_connection(link.system))
    return link


def supplier_links_apply(*, links: list[MasterDataLink], actor=None) -> int:
    """Bring documents stored before these links were confirmed up to date, as their next version would be.

    Unposted documents from a link's system that name its external supplier (an invoice's or PO's
    supplier, a requisition line's) get the ERP vendor and are checked again: a cleared invoice is
    queued for posting, a cleared requisition goes to its approvers. Posted documents are the ERP's
    history and keep what they were posted with. A few queries per call when no document is
    affected (a refresh confirming thousands of links), one update per link that has documents.
    Returns how many documents changed.
    """
    wanted: dict[tuple[str, str], MasterDataLink] = {}
    for link in links:
        if link.status == LINK.CONFIRMED and link.code:
            for key in (link.external_number, link.external_id):
                if key:
                    wanted.setdefault((link.system, key), link)
    keys = sorted({k for _, k in wanted})
    if not keys:
        return 0
    kinds = Document.Kind
    unposted = Document.objects.filter(
        source_system__in={s for s, _ in wanted},
        kind__in=[kinds.REQUISITION, kinds.PURCHASE_ORDER, kinds.SUPPLIER_INVOICE],
        financial_status__in=[Document.FinancialStatus.NOT_POSTED, Document.FinancialStatus.REJECTED])
    known, headers, lines = set(), [], []
    for start in range(0, len(keys), IN_LIMIT):
        chunk = keys[start:start + IN_LIMIT]
        # As `supplier_crosswalk`: a number the ERP itself knows is that vendor, never translated.
        known.update(Supplier.objects.filter(code__in=chunk).values_list("code", flat=True))
        headers += unposted.filter(kind__in=[kinds.PURCHASE_ORDER, kinds.SUPPLIER_INVOICE], party_code__in=chunk) \
            .values_list("pk", "source_system", "party_code")
        lines += DocumentLine.objects.filter(document__in=unposted, supplier_code__in=chunk) \
            .values_list("pk", "document_id", "document__source_system", "supplier_code")
    header_ids: dict[MasterDataLink, list[int]] = {}
    line_ids: dict[MasterDataLink, list[int]] = {}
    touched: dict[int, set[MasterDataLink]] = {}
    for rows, ids in (([(pk, pk, system, code) for pk, system, code in headers], header_ids), (lines, line_ids)):
        for pk, doc_id, system, code in rows:
            link = wanted.get((system, code))
            if link is not None and code not in known:
                ids.setdefault(link, []).append(pk)
                touched.setdefault(doc_id, set()).add(link)
    if not touched:
        return 0
    now = timezone.now()
    for link, ids in header_ids.items():
        Document.objects.filter(pk__in=ids).update(party_code=link.code, updated_at=now)
    for link, ids in line_ids.items():
        DocumentLine.objects.filter(pk__in=ids).update(supplier_code=link.code)
    docs = list(Document.objects.filter(pk__in=list(touched)).order_by("pk"))
    how = f"confirmed by {_who(actor)}" if actor is not None else "matched automatically"
    DocumentEvent.objects.bulk_create([
        DocumentEvent(document=d, at=now, system="workbench", action="supplier_linked", actor=actor,
                      message=f"Supplier {_link_external(link)} is ERP vendor {link.code} ({link.entity_code}): "
                              f"the link was {how}",
                      correlation_id=d.correlation_id, data={"link": link.pk, "code": link.code})
        for d in docs for link in sorted(touched[d.pk], key=lambda link: link.pk)])
    _documents_recheck(docs, actor)
    return len(docs)


def _documents_recheck(docs: list[Document], actor) -> None:
    from sync import push
    from sync.p2p import requisition_send_for_approval
    from workbench.services.validation import documents_validate

    for start in range(0, len(docs), 200):
        clean = documents_validate(documents=docs[start:start + 200], actor=actor)
        # As the procurement pull does: a document the ERP refused is re-posted by a person, not by this.
        push.enqueue_postings([d for d in clean if d.kind == Document.Kind.SUPPLIER_INVOICE
                               and d.financial_status == Document.FinancialStatus.NOT_POSTED])
        for doc in clean:
            if doc.kind == Document.Kind.REQUISITION and doc.business_status == Document.BusinessStatus.PENDING:
                requisition_send_for_approval(doc)


@transaction.atomic
def supplier_link_reject(*, link: MasterDataLink, actor, reason: str) -> MasterDataLink:
    """Say "not this vendor". The pair is remembered (refreshes never propose it again).

    The item stays open, reworded: the external supplier is still unknown and documents naming it
    will not find their vendor, so the work is not done until someone picks the right vendor (which
    resolves it). Closing it would leave an unlinked supplier that no queue shows.
    """
    reason = clean(reason or "")[:500]
    if not reason:
        raise InvalidTransition("Say why this is not the same supplier: the reason is kept with the decision.")
    if link.status not in (LINK.PROPOSED, LINK.CONFIRMED) or not link.code:
        raise InvalidTransition("Only a proposed or confirmed vendor can be rejected.")
    sup = Supplier.objects.filter(entity__code=link.entity_code, code=link.code).first()
    vendor = f"ERP vendor {link.code} '{sup.name if sup else ''}' ({link.entity_code})"
    _claim(link, status=LINK.REJECTED, decided_by=actor, decided_at=timezone.now(),
           reasons=[*link.reasons, f"rejected by {_who(actor)}: {reason}"])
    message = (f"{_link_external(link)} is not {vendor}: rejected by {_who(actor)} ({reason}). "
               "Pick the right ERP vendor.")
    item = exception_item_raise(code=CODE, message=message, fp=fingerprint(link.system, link.external_id),
                                detail={"system": link.system, "external_id": link.external_id, "link": link.pk,
                                        "external_number": link.external_number, "status": link.status,
                                        "rejected": [link.entity_code, link.code]},
                                search_extra=f"{link.external_id} {link.external_number} {link.external_name} {link.code}")
    if sup is not None and item.entity_id is None:
        ExceptionItem.objects.filter(pk=item.pk).update(entity_id=sup.entity_id)
    ExceptionEvent.objects.create(item=item, action="match_rejected", from_status=item.status, to_status=item.status,
                                  actor=actor, reason=f"Not {vendor}: {reason}", correlation_id=item.correlation_id)
    _tax_id_conflicts_close([link])  # no vendor, no question
    return link


# --- reading the crosswalk ---------------------------------------------------------------------------------


def supplier_codes_for(system: str, values) -> dict[str, tuple[str, str]]:
    """External number or id -> (entity_code, ERP code), through confirmed links (a number wins over an id)."""
    values = [v for v in {str(v) for v in values} if v]
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(values), IN_LIMIT // 2):
        chunk = values[start:start + IN_LIMIT // 2]
        rows = (MasterDataLink.objects.filter(object_type=OBJECT_TYPE, system=system, status=LINK.CONFIRMED)
                .filter(Q(external_number__in=chunk) | Q(external_id__in=chunk))
                .values_list("external_id", "external_number", "entity_code", "code").order_by("id"))
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
    national = canonical[3:] if canonical.startswith("CHE") else canonical[len(prefix):]
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
        if sup.tax_id.upper() == raw or theirs == canonical or (bare and theirs[2:] == canonical and theirs[:2].isalpha()):
            return sup
    return None


def supplier_link_counts() -> dict[str, int]:
    counts = dict(MasterDataLink.objects.filter(object_type=OBJECT_TYPE).values_list("status")
                  .annotate(n=Count("id")).values_list("status", "n"))
    return {status: counts.get(status, 0) for status in LINK.values}


def supplier_link_list(*, statuses, q: str = "") -> QuerySet[MasterDataLink]:
    """Links of these statuses; waiting ones proposed first (likely before uncertain), then unmatched, then rejected."""
    qs = MasterDataLink.objects.filter(object_type=OBJECT_TYPE, status__in=list(statuses)).select_related("decided_by")
    q = clean(q or "")[:100]
    if q:
        qs = qs.filter(Q(external_id__icontains=q) | Q(external_number__icontains=q) | Q(external_name__icontains=q)
                       | Q(tax_id__icontains=q) | Q(code__icontains=q))
    rank = Case(When(status=LINK.PROPOSED, then=Value(0)), When(status=LINK.UNMATCHED, then=Value(1)),
                When(status=LINK.REJECTED, then=Value(2)), default=Value(3), output_field=IntegerField())
    first = Case(When(certainty=LIKELY, then=Value(0)), default=Value(1), output_field=IntegerField())
    return qs.annotate(rank=rank, first=first).order_by("rank", "first", "-score", "system", "external_name", "id")


def supplier_links_annotate(links) -> list[MasterDataLink]:
    """Attach each link's ERP vendor (`.vendor`) and exception item (`.item`): two queries for a page."""
    links = list(links)
    codes = {link.code for link in links if link.code}
    vendors = {(s.entity.code, s.code): s for s in Supplier.objects.filter(code__in=codes).select_related("entity")} if codes else {}
    items = {i.fingerprint: i for i in ExceptionItem.objects.filter(
        fingerprint__in=[fingerprint(link.system, link.external_id) for link in links])} if links else {}
    for link in links:
        link.system_name = system_label(link.system)
        link.vendor = vendors.get((link.entity_code, link.code))
        link.item = items.get(fingerprint(link.system, link.external_id))
    return links
