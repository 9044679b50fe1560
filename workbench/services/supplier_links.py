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

from collections import Counter
from decimal import Decimal

from django.db import transaction
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
from workbench.search import fold
from workbench.selectors.calendars import Calendars
from workbench.selectors.connections import connection_of_system
from workbench.selectors.suppliers import (
    IN_LIMIT,
    MATCH_CODE,
    OBJECT_TYPE,
    ErpVendors,
    Vendor,
    link_label,
    match_fingerprint,
)
from workbench.services.exception_items import (
    exception_item_raise,
    exception_item_transition,
    exception_items_create,
    search_text,
)
from workbench.services.ownership import supplier_tax_id_conflicts, supplier_tax_id_conflicts_close
from workbench.services.revalidation import documents_revalidate
from workbench.supplier_match import CERTAIN, Party, country_code
from workbench.values import printable

CODE = MATCH_CODE
LINK = MasterDataLink.Status
WAITING = (LINK.PROPOSED, LINK.UNMATCHED, LINK.REJECTED)


class UnknownVendor(WorkbenchError):
    """The vendor a person picked is not in the ERP's vendor master."""


# --- messages --------------------------------------------------------------------------------------------


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


def _proposal_message(link: MasterDataLink, vendor: Vendor | None) -> str:
    if link.status == LINK.UNMATCHED or vendor is None:
        return (
            f"{link_label(link)}: no ERP vendor found by tax id, IBAN or name; "
            "pick the vendor, or create it in the ERP first."
        )
    return f"{link_label(link)} may be {vendor.describe()}: {_evidence(link.reasons)}; confirm or pick another."


# --- refresh ---------------------------------------------------------------------------------------------


SNAPSHOT = ["external_number", "external_name", "tax_id", "iban", "country"]
DECISION = ["entity_code", "code", "status", "certainty", "score", "reasons"]


def _links_of(system: str, external_ids: list[str]) -> dict[str, MasterDataLink]:
    qs = MasterDataLink.objects.filter(object_type=OBJECT_TYPE, system=system)
    if len(external_ids) <= IN_LIMIT:
        qs = qs.filter(external_id__in=external_ids)
    return {link.external_id: link for link in qs}


@transaction.atomic
def supplier_links_refresh(
    *, system: str, records: list[dict], connection=None, vendors: ErpVendors | None = None
) -> dict[str, int]:
    """Match external supplier records against the ERP vendor master and keep the crosswalk.

    Records: ``external_id``, ``number``, ``name``, ``tax_id``, ``iban``, ``country``. Linear: one
    query for the ERP vendors, one for the existing links, bulk writes. Returns counts per outcome.
    A caller refreshing page after page passes `vendors` (`ErpVendors.load()`, once per run): the
    vendor master is then read and indexed once, not per page.
    """
    counts: Counter[str] = Counter()
    recs: dict[str, dict] = {}
    for r in records:
        external_id = printable(r.get("external_id"), 128)
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
        snap = {
            "external_number": printable(r.get("number"), 64),
            "external_name": printable(r.get("name"), 200),
            "tax_id": printable(r.get("tax_id"), 40),
            "iban": printable(r.get("iban"), 40),
            "country": country_code(printable(r.get("country"), 10)),
        }
        snapshots[external_id] = snap
        link = links.get(external_id)
        if link is not None and link.decided_at is not None:
            continue
        keyed = (
            vendors.by_key(snap["external_number"], snap["tax_id"], snap["country"])
            if snap["external_number"]
            else None
        )
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
        values = {
            **snap,
            "status": status,
            "entity_code": vendor.entity_code if vendor else "",
            "code": vendor.code if vendor else "",
            "certainty": certainty,
            "score": Decimal(str(round(score, 3))),
            "reasons": reasons,
        }
        if link is None:
            links[external_id] = MasterDataLink(
                object_type=OBJECT_TYPE, system=system, external_id=external_id, **values
            )
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
    MasterDataLink.objects.filter(decided_at__isnull=True).bulk_update(
        changed, [*SNAPSHOT, *DECISION, "updated_at"], batch_size=500
    )
    MasterDataLink.objects.bulk_update(decided_changed, [*SNAPSHOT, "updated_at"], batch_size=500)
    counts.update(created=len(new), updated=len(changed))

    wanted, settled = {}, {}
    for external_id, (status, vendor, _c, _s2, reasons) in outcome.items():
        link = links[external_id]
        fp = match_fingerprint(system, external_id)
        if status == LINK.CONFIRMED:
            settled[fp] = f"Matched automatically to {vendor.describe()}: {_evidence(reasons)}."
        else:
            wanted[fp] = (link, vendor)
    raised, resolved = _items_sync(system=system, connection=connection, wanted=wanted, settled=settled, now=now)
    counts.update(items_raised=raised, items_resolved=resolved)
    # Only links this refresh changed: an unchanged one was compared when it last changed.
    raised, resolved = supplier_tax_id_conflicts(
        system=system, links=[*new, *changed, *decided_changed], vendors=vendors, connection=connection
    )
    counts.update(conflicts_raised=raised, conflicts_resolved=resolved)
    # A link the evidence now confirms reaches the documents that waited for it, as a person's confirm does.
    counts.update(documents_updated=supplier_links_apply(links=[*new, *changed]))
    return dict(counts)


def _item_detail(link: MasterDataLink, vendor: Vendor | None) -> dict:
    return {
        "system": link.system,
        "external_id": link.external_id,
        "external_number": link.external_number,
        "link": link.pk,
        "status": link.status,
        "entity_code": vendor.entity_code if vendor else "",
        "code": vendor.code if vendor else "",
        "certainty": link.certainty,
        "score": str(link.score),
    }


def _search_extra(link: MasterDataLink, vendor: Vendor | None) -> str:
    parts = [link.system, link.external_id, link.external_number, link.external_name, link.tax_id]
    if vendor:
        parts += [vendor.code, vendor.name]
    return fold(" ".join(p for p in parts if p))


def _items_sync(*, system: str, connection, wanted: dict, settled: dict[str, str], now) -> tuple[int, int]:
    """Raise or update the items of links that wait for a person; resolve those whose link settled.

    Bulk for the common cases (new items, changed words); one transition per reopened or resolved item.
    """
    fps = [*wanted, *settled]
    if not fps:
        return 0, 0
    qs = ExceptionItem.objects.filter(code=CODE)
    qs = (
        qs.filter(fingerprint__in=fps)
        if len(fps) <= IN_LIMIT
        else qs.filter(fingerprint__startswith=f"{CODE}:{system}:")
    )
    existing = {i.fingerprint: i for i in qs.only("id", "fingerprint", "message", "status", "correlation_id")}
    spec = CODES[CODE]
    cals = Calendars()  # SLAs in business hours, each entity's calendar loaded once
    new, reworded, reopen = [], [], []
    for fp, (link, vendor) in wanted.items():
        message = _proposal_message(link, vendor)
        search = f"{search_text(CODE, message, None, connection)} {_search_extra(link, vendor)}".strip()
        item = existing.get(fp)
        if item is None:
            new.append(
                ExceptionItem(
                    fingerprint=fp,
                    code=CODE,
                    category=spec.category,
                    kind=spec.kind,
                    severity=spec.severity,
                    status=Status.OPEN,
                    message=message,
                    connection=connection,
                    entity_id=vendor.entity_id if vendor else None,
                    amount_at_risk=0,
                    currency="USD",
                    owner_team=spec.owner_team,
                    detail=_item_detail(link, vendor),
                    search=search,
                    opened_at=now,
                    sla_due_at=cals.sla_due(vendor.entity_id if vendor else None, spec.sla_hours, now),
                )
            )
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
    code, entity_code = printable(code, 40), printable(entity_code, 20)
    if not code:
        raise UnknownVendor("Enter the ERP vendor number to link to.")
    found = list(
        Supplier.objects.filter(code=code, **({"entity__code": entity_code} if entity_code else {}))
        .select_related("entity")
        .order_by("entity__code")[:5]
    )
    if not found:
        where = f" in {entity_code}" if entity_code else ""
        raise UnknownVendor(f"'{code}' is not an ERP vendor{where}. Pick a vendor number from the ERP's vendor master.")
    if len(found) > 1:
        raise UnknownVendor(
            f"Vendor {code} exists in {', '.join(s.entity.code for s in found)}: choose the entity too."
        )
    return found[0]


def _claim(link: MasterDataLink, **changes) -> None:
    """Compare-and-set on what the person saw: a refresh or another person in between makes it stale."""
    now = timezone.now()
    seen = MasterDataLink.objects.filter(
        pk=link.pk, status=link.status, entity_code=link.entity_code, code=link.code, decided_at=link.decided_at
    )
    if seen.update(**changes, updated_at=now) != 1:
        raise StaleUpdate(
            "This supplier link was changed meanwhile (by a sync or by someone else). Reload and check it again."
        )
    for k, v in changes.items():
        setattr(link, k, v)
    link.updated_at = now


def _open_item(link: MasterDataLink) -> ExceptionItem | None:
    return ExceptionItem.objects.filter(fingerprint=match_fingerprint(link.system, link.external_id)).first()


@transaction.atomic
def supplier_link_confirm(
    *, link: MasterDataLink, actor, entity_code: str | None = None, code: str | None = None
) -> MasterDataLink:
    """Confirm the proposed vendor (no `code`), or link the external supplier to the vendor a person picked."""
    if code is not None:
        sup = _vendor_for(entity_code=entity_code, code=code)
        picked = (sup.entity.code, sup.code) != (link.entity_code, link.code) or link.status != LINK.PROPOSED
        name = sup.name
    elif link.status == LINK.PROPOSED and link.code:
        sup = Supplier.objects.filter(entity__code=link.entity_code, code=link.code).select_related("entity").first()
        if sup is None:
            raise UnknownVendor(
                f"ERP vendor {link.code} ({link.entity_code}) is no longer in the ERP's vendor master; pick another."
            )
        picked, name = False, sup.name
    else:
        raise InvalidTransition("There is no proposed vendor to confirm: pick the ERP vendor.")
    now = timezone.now()
    vendor = f"ERP vendor {sup.code} '{name}' ({sup.entity.code})"
    note = f"{_who(actor)} picked {sup.code} ({sup.entity.code})" if picked else f"confirmed by {_who(actor)}"
    _claim(
        link,
        status=LINK.CONFIRMED,
        entity_code=sup.entity.code,
        code=sup.code,
        decided_by=actor,
        decided_at=now,
        reasons=[*(link.reasons if not picked else []), note],
        **({"certainty": "", "score": 0} if picked else {}),
    )
    item = _open_item(link)
    if item is not None and item.is_active:
        exception_item_transition(
            item=item,
            to=Status.RESOLVED,
            actor=actor,
            action="confirmed",
            reason=f"{_who(actor)} linked {link_label(link)} to {vendor}.",
        )
    link.documents_updated = supplier_links_apply(links=[link], actor=actor)
    supplier_tax_id_conflicts(
        system=link.system,
        links=[link],
        vendors=ErpVendors.load(pk=sup.pk),
        connection=connection_of_system(link.system),
    )
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
        financial_status__in=[Document.FinancialStatus.NOT_POSTED, Document.FinancialStatus.REJECTED],
    )
    known, headers, lines = set(), [], []
    for start in range(0, len(keys), IN_LIMIT):
        chunk = keys[start : start + IN_LIMIT]
        # As `supplier_crosswalk`: a number the ERP itself knows is that vendor, never translated.
        known.update(Supplier.objects.filter(code__in=chunk).values_list("code", flat=True))
        headers += unposted.filter(
            kind__in=[kinds.PURCHASE_ORDER, kinds.SUPPLIER_INVOICE], party_code__in=chunk
        ).values_list("pk", "source_system", "party_code")
        lines += DocumentLine.objects.filter(document__in=unposted, supplier_code__in=chunk).values_list(
            "pk", "document_id", "document__source_system", "supplier_code"
        )
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
    DocumentEvent.objects.bulk_create(
        [
            DocumentEvent(
                document=d,
                at=now,
                system="workbench",
                action="supplier_linked",
                actor=actor,
                message=f"Supplier {link_label(link)} is ERP vendor {link.code} ({link.entity_code}): "
                f"the link was {how}",
                correlation_id=d.correlation_id,
                data={"link": link.pk, "code": link.code},
            )
            for d in docs
            for link in sorted(touched[d.pk], key=lambda link: link.pk)
        ]
    )
    # As the procurement pull does: a clean invoice is posted, a clean requisition goes to its approvers
    # (a document the ERP refused is re-posted by a person, not by this).
    documents_revalidate(docs, actor=actor)
    return len(docs)


@transaction.atomic
def supplier_link_reject(*, link: MasterDataLink, actor, reason: str) -> MasterDataLink:
    """Say "not this vendor". The pair is remembered (refreshes never propose it again).

    The item stays open, reworded: the external supplier is still unknown and documents naming it
    will not find their vendor, so the work is not done until someone picks the right vendor (which
    resolves it). Closing it would leave an unlinked supplier that no queue shows.
    """
    reason = printable(reason, 500)
    if not reason:
        raise InvalidTransition("Say why this is not the same supplier: the reason is kept with the decision.")
    if link.status not in (LINK.PROPOSED, LINK.CONFIRMED) or not link.code:
        raise InvalidTransition("Only a proposed or confirmed vendor can be rejected.")
    sup = Supplier.objects.filter(entity__code=link.entity_code, code=link.code).first()
    vendor = f"ERP vendor {link.code} '{sup.name if sup else ''}' ({link.entity_code})"
    _claim(
        link,
        status=LINK.REJECTED,
        decided_by=actor,
        decided_at=timezone.now(),
        reasons=[*link.reasons, f"rejected by {_who(actor)}: {reason}"],
    )
    message = f"{link_label(link)} is not {vendor}: rejected by {_who(actor)} ({reason}). Pick the right ERP vendor."
    item = exception_item_raise(
        code=CODE,
        message=message,
        fp=match_fingerprint(link.system, link.external_id),
        detail={
            "system": link.system,
            "external_id": link.external_id,
            "link": link.pk,
            "external_number": link.external_number,
            "status": link.status,
            "rejected": [link.entity_code, link.code],
        },
        search_extra=f"{link.external_id} {link.external_number} {link.external_name} {link.code}",
    )
    if sup is not None and item.entity_id is None:
        ExceptionItem.objects.filter(pk=item.pk).update(entity_id=sup.entity_id)
    ExceptionEvent.objects.create(
        item=item,
        action="match_rejected",
        from_status=item.status,
        to_status=item.status,
        actor=actor,
        reason=f"Not {vendor}: {reason}",
        correlation_id=item.correlation_id,
    )
    supplier_tax_id_conflicts_close([link])  # no vendor, no question
    return link
