"""Document services: upsert from a source, analyst corrections, and the financial status.

A document's financial status (not posted -> posting -> posted -> ready for payment -> paid, or
rejected by the ERP) changes only through `document_financial_transition` and its bulk twin: one
table of allowed moves (`FINANCIAL_TRANSITIONS`), a compare-and-set UPDATE, and a database
CheckConstraint on the values.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from workbench import jobs
from workbench.errors import InvalidCorrection, InvalidTransition
from workbench.models import (
    AccountingPeriod,
    CostCenter,
    Document,
    DocumentEvent,
    DocumentLine,
    DocumentRef,
    GLAccount,
    LegalEntity,
    Project,
    TaxCode,
)
from workbench.money import parse_amount
from workbench.services.exception_items import (
    exception_item_raise,
    exception_items_resolve,
    mark_waiting,
    search_text,
)
from workbench.services.trace import document_event_add
from workbench.values import as_date, as_datetime

FIN = Document.FinancialStatus
FINANCIAL_TRANSITIONS: dict[str, set[str]] = {
    FIN.NOT_POSTED: {FIN.POSTING, FIN.POSTED},  # posted: the ERP shows it posted (found there, or entered there)
    FIN.POSTING: {FIN.POSTED, FIN.REJECTED, FIN.NOT_POSTED},  # not posted: withdrawn before it was sent
    FIN.REJECTED: {FIN.POSTING, FIN.POSTED, FIN.NOT_POSTED},  # not posted: a new version from the source
    FIN.POSTED: {FIN.READY_FOR_PAYMENT, FIN.PAID},
    FIN.READY_FOR_PAYMENT: {FIN.PAID},
    FIN.PAID: set(),
}


def _allowed(frm: str, to: str) -> None:
    if to not in FINANCIAL_TRANSITIONS[frm]:
        raise InvalidTransition(f"A document that is {FIN(frm).label.lower()} cannot become {FIN(to).label.lower()}.")


def document_financial_transition(
    *, document: Document, to: str, revision: int | None = None, changes: dict | None = None
) -> bool:
    """Move one document's financial status by compare-and-set (and write `changes` with it).

    Returns False, changing nothing, when someone else moved the document first (or, with
    `revision`, revised it meanwhile); raises InvalidTransition for a move the table forbids.
    """
    frm = document.financial_status
    _allowed(frm, to)
    q = Document.objects.filter(pk=document.pk, financial_status=frm)
    if revision is not None:
        q = q.filter(revision=revision)
    changes = changes or {}
    if not q.update(financial_status=to, updated_at=timezone.now(), **changes):
        return False
    document.financial_status = to
    for name, value in changes.items():
        if not isinstance(value, F):
            setattr(document, name, value)
    return True


def documents_financial_transition(*, documents: list[Document], to: str) -> int:
    """The bulk form: one UPDATE per current status; documents someone else moved meanwhile are left."""
    by_status: dict[str, list[Document]] = {}
    for doc in documents:
        _allowed(doc.financial_status, to)
        by_status.setdefault(doc.financial_status, []).append(doc)
    moved = 0
    for frm, docs in by_status.items():
        moved += Document.objects.filter(pk__in=[d.pk for d in docs], financial_status=frm).update(
            financial_status=to, updated_at=timezone.now()
        )
        for doc in docs:
            doc.financial_status = to
    return moved


def _newer(incoming: str, current: str) -> bool:
    """Source versions are numbers in practice; compare them as such, else as text."""
    try:
        return int(incoming) > int(current)
    except ValueError:
        return incoming != current


@dataclass
class UpsertResult:
    created: list[Document] = field(default_factory=list)
    changed: list[Document] = field(default_factory=list)
    unchanged: list[Document] = field(default_factory=list)

    @property
    def touched(self) -> list[Document]:
        return self.created + self.changed


def _header(system: str, rec: dict, entities: dict[str, LegalEntity]) -> dict:
    entity = entities.get(rec.get("entity") or "")
    return dict(
        source_system=system,
        source_id=str(rec["external_id"]),
        number=str(rec.get("number") or "")[:60],
        name=str(rec.get("name") or "")[:300],
        entity=entity,
        entity_code=str(rec.get("entity") or "")[:20],
        party_code=str(rec.get("employee_code") or "")[:40],
        party_name=str(rec.get("employee_name") or "")[:200],
        currency=str(rec.get("currency") or "")[:3].upper(),
        total=parse_amount(rec.get("total", 0)),
        version=str(rec.get("version") or "1")[:20],
        business_status=rec.get("approval_status") or "approved",
        submitted_at=as_datetime(rec.get("submitted_at")),
        approved_at=as_datetime(rec.get("approved_at")),
    )


def _lines(doc: Document, rec: dict) -> list[DocumentLine]:
    out = []
    for i, ln in enumerate(rec.get("lines") or [], start=1):
        original = ln.get("original_amount")
        out.append(
            DocumentLine(
                document=doc,
                line_no=i,
                external_id=str(ln.get("external_id") or "")[:100],
                date=as_date(ln.get("date")),
                category=str(ln.get("category") or "")[:40],
                category_name=str(ln.get("category_name") or "")[:100],
                description=str(ln.get("description") or ""),
                merchant=str(ln.get("merchant") or "")[:200],
                amount=parse_amount(ln.get("amount", 0)),
                currency=str(ln.get("currency") or doc.currency)[:3].upper(),
                original_amount=parse_amount(original) if original not in (None, "") else None,
                original_currency=str(ln.get("original_currency") or "")[:3].upper(),
                gl_account=str(ln.get("gl_account") or "")[:40],
                cost_center=str(ln.get("cost_center") or "")[:40],
                project=str(ln.get("project") or "")[:40],
                tax_code=str(ln.get("tax_code") or "")[:40],
            )
        )
    return out


def check_record(rec: dict) -> str:
    """Why a canonical record cannot be stored, or "" -- so one bad record never fails a page."""
    try:
        if not rec.get("external_id"):
            return "record has no id"
        cur = str(rec.get("currency") or "")
        if len(cur) != 3 or not cur.isalpha() or not cur.isupper():
            return f"currency {cur!r} is not an ISO 4217 code"
        parse_amount(rec.get("total", 0))
        for i, ln in enumerate(rec.get("lines") or [], start=1):
            parse_amount(ln.get("amount"))
            lc = str(ln.get("currency") or cur)
            if len(lc) != 3 or not lc.isalpha() or not lc.isupper():
                return f"line {i}: currency {lc!r} is not an ISO 4217 code"
            if ln.get("date") and as_date(ln.get("date")) is None:
                return f"line {i}: date {ln.get('date')!r} is not a date"
    except ValueError as exc:
        return str(exc)
    return ""


@transaction.atomic
def documents_upsert_from_source(*, system: str, records: list[dict]) -> UpsertResult:
    """Store a page of canonical expense reports from their source, in bulk.

    Same source id and version: unchanged (re-delivery is harmless and keeps our corrections).
    A new version replaces header and lines, and bumps nothing else. Each new document gets a
    correlation id, crosswalk refs and its first trace events (approved in source, received).
    """
    result = UpsertResult()
    if not records:
        return result
    entities = {e.code: e for e in LegalEntity.objects.all()}
    by_id = {str(r["external_id"]): r for r in records}  # a page may repeat a record: last wins
    existing = {d.source_id: d for d in Document.objects.filter(source_system=system, source_id__in=list(by_id))}
    now = timezone.now()
    new_docs, lines, refs, events = [], [], [], []
    for source_id, rec in by_id.items():
        fields = _header(system, rec, entities)
        doc = existing.get(source_id)
        if doc is None:
            doc = Document(correlation_id=uuid.uuid4(), **fields)
            new_docs.append((doc, rec))
        elif not _newer(fields["version"], doc.version):
            result.unchanged.append(doc)  # the same version again, or an older one: nothing to do
        elif doc.financial_status not in (FIN.NOT_POSTED, FIN.REJECTED):
            # Already on its way to (or in) the ERP: never post a second document for one report.
            changed_after_posting(doc, fields["version"], system)
            result.unchanged.append(doc)
        else:
            supersede_items(doc, f"Superseded by version {fields['version']} from {system}.")
            events.append(
                document_version_replace(
                    doc,
                    {**fields, "financial_status": FIN.NOT_POSTED},
                    system=system,
                    at=now,
                    message=f"Version {fields['version']} received from {system}",
                )
            )
            lines.extend(_lines(doc, rec))
            result.changed.append(doc)
    if new_docs:
        Document.objects.bulk_create([d for d, _ in new_docs])
        if new_docs[0][0].pk is None:  # SQLite < 3.35 returns no ids; fetch them
            ids = dict(
                Document.objects.filter(
                    source_system=system, source_id__in=[d.source_id for d, _ in new_docs]
                ).values_list("source_id", "pk")
            )
            for d, _ in new_docs:
                d.pk = d.id = ids[d.source_id]
        for doc, rec in new_docs:
            lines.extend(_lines(doc, rec))
            refs.append(DocumentRef(document=doc, system=system, kind="source_doc", external_id=doc.source_id))
            if rec.get("report_id"):
                refs.append(
                    DocumentRef(document=doc, system=system, kind="report", external_id=str(rec["report_id"])[:100])
                )
            if doc.approved_at:
                events.append(
                    DocumentEvent(
                        document=doc,
                        at=doc.approved_at,
                        system=system,
                        action="approved",
                        message=f"Approved in {system}",
                        correlation_id=doc.correlation_id,
                    )
                )
            events.append(
                DocumentEvent(
                    document=doc,
                    at=now,
                    system="workbench",
                    action="received",
                    message=f"Received from {system} ({len(rec.get('lines') or [])} lines, {doc.total} {doc.currency})",
                    correlation_id=doc.correlation_id,
                )
            )
            result.created.append(doc)
    DocumentLine.objects.bulk_create(lines)
    DocumentRef.objects.bulk_create(refs, ignore_conflicts=True)
    DocumentEvent.objects.bulk_create(events)
    return result


def document_version_replace(doc: Document, fields: dict, *, system: str, at, message: str) -> DocumentEvent:
    """Replace an unposted document's content with its source's new version: the header, revision 0, and
    no lines (the caller stores the new ones). A financial status among `fields` moves through the table.
    Returns the trace event, for the caller's bulk insert."""
    fields = dict(fields)
    to = fields.pop("financial_status", None)
    if to and to != doc.financial_status:
        document_financial_transition(document=doc, to=to)
    for k, v in fields.items():
        setattr(doc, k, v)
    doc.revision = 0
    doc.save()
    doc.lines.all().delete()  # items keep their history: their line link is set to null
    return DocumentEvent(
        document=doc, at=at, system=system, action="new_version", message=message, correlation_id=doc.correlation_id
    )


def supersede_items(doc: Document, reason: str) -> None:
    exception_items_resolve(
        items=doc.exceptions.filter(status__in=["open", "in_progress", "waiting"]), reason=reason, action="superseded"
    )


def changed_after_posting(doc: Document, version: str, system: str) -> None:
    where = f"posted as {doc.erp_document_number}" if doc.erp_document_number else "queued for posting"
    message = (
        f"{system} sent version {version} of report {doc.number} after it was {where}; the ERP was not changed. "
        "Reverse or adjust the posting in the ERP, or send the change back to the submitter."
    )
    document_event_add(document=doc, system=system, action="changed_after_posting", message=message)
    exception_item_raise(
        code="CHANGED_AFTER_POSTING",
        fp=f"CHANGED_AFTER_POSTING:doc{doc.pk}:v{version}",
        document=doc,
        message=message,
        detail={"version": version},
    )


# --- corrections (analyst fixes the cause in place) ----------------------------------------

CORRECTABLE = {"cost_center", "date", "tax_code", "project", "gl_account"}


@transaction.atomic
def document_line_correct(*, line: DocumentLine, field_name: str, value: str, reason: str, actor) -> DocumentLine:
    """Change one field of a line, with the ERP's master data as the only allowed values.

    Bumps the document's revision (so the posting gets a new idempotency key), records who did what,
    sets the document's items to waiting and queues re-validation and posting.
    """
    doc = line.document
    if field_name not in CORRECTABLE:
        raise InvalidCorrection(f"'{field_name}' cannot be corrected here.")
    if doc.financial_status in (Document.FinancialStatus.POSTED, Document.FinancialStatus.PAID):
        raise InvalidCorrection("This document is already posted in the ERP; correct it there.")
    if doc.entity_id is None:
        raise InvalidCorrection("The document's legal entity is unknown; fix the entity first.")
    if doc.writes.filter(action="post_expense_report", status__in=["pending", "sending", "dead"]).exists():
        raise InvalidCorrection(
            "A posting of this report is still on its way (or failed and may have reached the ERP): "
            "wait for it, or replay it from its POSTING_FAILED item, before changing the report."
        )
    value = (value or "").strip()
    if field_name == "cost_center":
        if not CostCenter.objects.filter(entity_id=doc.entity_id, code=value, active=True).exists():
            raise InvalidCorrection(f"'{value}' is not an active cost center of {doc.entity_code} in the ERP.")
        new = value
    elif field_name == "tax_code":
        if not TaxCode.objects.filter(entity_id=doc.entity_id, code=value).exists():
            raise InvalidCorrection(f"'{value}' is not a tax code of {doc.entity_code} in the ERP.")
        new = value
    elif field_name == "gl_account":
        if line.po_line_id:
            raise InvalidCorrection("This line is posted on its PO line's account: correct the purchase order.")
        account = GLAccount.objects.filter(entity_id=doc.entity_id, code=value).first()
        if account is None:
            raise InvalidCorrection(f"'{value}' is not a GL account of {doc.entity_code} in the ERP.")
        if account.refusal:
            raise InvalidCorrection(f"GL account {value} {account.refusal}: the ERP would refuse the line.")
        new = value
    elif field_name == "project":
        if value and not Project.objects.filter(entity_id=doc.entity_id, code=value).exists():
            raise InvalidCorrection(f"'{value}' is not a project of {doc.entity_code} in the ERP.")
        new = value
    else:
        new_date = as_date(value)
        if new_date is None:
            raise InvalidCorrection(f"'{value}' is not a date (use YYYY-MM-DD).")
        if not reason.strip():
            raise InvalidCorrection("Moving a line to another period needs a reason.")
        period = AccountingPeriod.objects.filter(
            entity_id=doc.entity_id, start__lte=new_date, end__gte=new_date
        ).first()
        if period is None or period.closed:
            raise InvalidCorrection(f"{new_date:%Y-%m-%d} is not in an open period of {doc.entity_code}.")
        new = new_date
    old = getattr(line, field_name)
    if str(old) == str(new):
        raise InvalidCorrection(f"The line's {field_name.replace('_', ' ')} is already {new}.")
    setattr(line, field_name, new)
    line.save(update_fields=[field_name])
    Document.objects.filter(pk=doc.pk).update(revision=doc.revision + 1, updated_at=timezone.now())
    doc.revision += 1
    label = field_name.replace("_", " ")
    message = f"Line {line.line_no}: {label} {old or '(empty)'} → {new}" + (f" — {reason}" if reason else "")
    document_event_add(
        document=doc,
        system="workbench",
        action="corrected",
        message=message,
        actor=actor,
        data={"line": line.line_no, "field": field_name, "from": str(old), "to": str(new), "reason": reason},
    )
    mark_waiting(document=doc, actor=actor, reason=message)
    jobs.enqueue_on_commit(
        jobs.REVALIDATE_DOCUMENT, document_id=doc.pk, actor_id=actor.pk if actor else None, repost=True
    )
    return line


# --- ERP outcomes -----------------------------------------------------------------------------


@transaction.atomic
def document_mark_posted(
    *, document: Document, erp_system: str, erp_id: str, number: str, fiscal_year: str = "", posting_date: str = ""
) -> bool:
    """The ERP accepted the document: its number, fiscal year and posting date as the ERP gave them.
    False when it was marked posted already (nothing is written twice)."""
    document.refresh_from_db(fields=["financial_status", "revision"])
    if document.financial_status in (FIN.POSTED, FIN.READY_FOR_PAYMENT, FIN.PAID):
        return False
    now = timezone.now()
    if not document_financial_transition(
        document=document,
        to=FIN.POSTED,
        changes={
            "erp_document_number": number,
            "erp_fiscal_year": fiscal_year[:4],
            "erp_posting_date": as_date(posting_date),
            "erp_message": "",
            "posted_at": now,
        },
    ):
        return False
    for item in document.exceptions.all():  # the ERP number becomes searchable
        type(item).objects.filter(pk=item.pk).update(search=search_text(item.code, item.message, document))
    DocumentRef.objects.get_or_create(
        system=erp_system, kind="erp_invoice", external_id=erp_id, defaults={"document": document}
    )
    if number:
        DocumentRef.objects.get_or_create(
            system=erp_system,
            kind="erp_number",
            external_id=f"{document.entity_code}:{number}",
            defaults={"document": document},
        )
    details = ", ".join(
        x
        for x in (
            f"fiscal year {fiscal_year}" if fiscal_year else "",
            f"posting date {posting_date}" if posting_date else "",
        )
        if x
    )
    document_event_add(
        document=document,
        system=erp_system,
        action="posted",
        message=f"Posted in the ERP as {number}" + (f" ({details})" if details else ""),
        data={"erp_id": erp_id, "number": number, "fiscal_year": fiscal_year, "posting_date": posting_date},
    )
    exception_items_resolve(
        items=document.exceptions.filter(code__in=["ERP_REJECTED", "POSTING_FAILED"]),
        reason=f"Posted in the ERP as {number}",
        action="posted",
    )
    # Items waiting on this posting (their rule already passed) end resolved with the posting.
    exception_items_resolve(
        items=document.exceptions.filter(status="waiting"), reason=f"Posted in the ERP as {number}", action="posted"
    )
    return True


@transaction.atomic
def document_mark_rejected(*, document: Document, erp_system: str, code: str, message: str) -> None:
    document.refresh_from_db(fields=["financial_status", "revision"])
    if document.financial_status != FIN.REJECTED:
        document_financial_transition(document=document, to=FIN.REJECTED, changes={"erp_message": f"{code}: {message}"})
    document_event_add(
        document=document, system=erp_system, action="rejected", message=f"{code}: {message}", data={"code": code}
    )
    exception_item_raise(
        code="ERP_REJECTED",
        fp=f"ERP_REJECTED:doc{document.pk}",
        document=document,
        message=f"The ERP refused the posting: {message}",
        detail={"erp_code": code, "erp_message": message},
        root_cause=message[:120],
    )


@transaction.atomic
def document_mark_paid(*, document: Document, erp_system: str, paid_at: datetime | None) -> bool:
    document.refresh_from_db(fields=["financial_status", "revision"])
    if document.financial_status == FIN.PAID:
        return False
    if not document_financial_transition(
        document=document, to=FIN.PAID, changes={"paid_at": paid_at or timezone.now()}
    ):
        return False
    document_event_add(document=document, system=erp_system, action="paid", message="Paid in the ERP")
    return True
