"""Procure-to-pay documents from their sources: requisitions, POs, receipts and supplier invoices.

Canonical records (connectors/README.md) become `Document` rows of the matching kind. The source
owns what users typed; its status changes (approved, ordered) are applied in place. A document's
`version` is a digest of its content, so our own write-backs (status, ERP PO number) never look
like a new version: no circular updates. A new version of a document that already reached the ERP
is not applied; it raises CHANGED_AFTER_POSTING for a person.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections import defaultdict
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from workbench.due_dates import FIELDS as TERMS_FIELDS
from workbench.due_dates import invoice_terms
from workbench.models import Document, DocumentEvent, DocumentLine, DocumentRef, LegalEntity
from workbench.money import parse_amount
from workbench.rules.p2p_context import number_key
from workbench.selectors.suppliers import supplier_crosswalk, supplier_for_tax_id, vendor_terms_for
from workbench.services.documents import (
    UpsertResult,
    changed_after_posting,
    document_version_replace,
    supersede_items,
)
from workbench.services.snooze import receipts_wake
from workbench.values import as_date, as_datetime, printable, truncated

KIND = Document.Kind
STATUS_MAP = {  # source status -> business status
    "draft": "draft",
    "pending_approval": "pending",
    "pending_buyer_action": "pending",
    "approved": "approved",
    "ordered": "approved",
    "rejected": "rejected",
    "withdrawn": "rejected",
    "voided": "rejected",
    "new": "pending",
    "pending_receipt": "pending",
    "disputed": "pending",
    "issued": "approved",
    "open": "approved",
    "released": "approved",
    "closed": "approved",
    "cancelled": "rejected",
    "canceled": "rejected",
}
CONTENT_FIELDS = {
    KIND.REQUISITION: ("entity", "requester_code", "currency", "total", "lines"),
    KIND.PURCHASE_ORDER: ("entity", "supplier_code", "vendor_number", "currency", "total", "lines"),
    KIND.SUPPLIER_INVOICE: (
        "number",
        "supplier_code",
        "supplier_tax_id",
        "entity",
        "currency",
        "total",
        "invoice_date",
        "po_number",
        "lines",
        "document_type",
    ),
    KIND.GOODS_RECEIPT: ("po_number", "po_line_no", "quantity", "received_on"),
}
LINE_VOLATILE = {"received_quantity", "invoiced_quantity"}


def _digest(kind: str, rec: dict) -> str:
    content = {k: rec.get(k) for k in CONTENT_FIELDS[kind]}
    if isinstance(content.get("lines"), list):
        content["lines"] = [{k: v for k, v in ln.items() if k not in LINE_VOLATILE} for ln in content["lines"]]
    return hashlib.sha1(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:12]


LIMIT = Decimal(10) ** 14  # numeric(20, 4) amounts and numeric(20, 6) prices: stay inside both


def _dec(value) -> Decimal | None:
    if value in (None, ""):
        return None
    v = parse_amount(value)
    if abs(v) >= LIMIT:
        raise ValueError(f"{value!r} is too large")
    return v


def _num(value) -> int | None:
    """A line number as sources send it ("3", 3, 30000); anything else (e.g. "²", 10**30) is no number."""
    text = str(value if value is not None else "").strip()
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None


def check_p2p_record(kind: str, rec: dict) -> str:
    """Why a canonical P2P record cannot be stored, or "" (one bad record never fails a page)."""
    try:
        if not rec.get("external_id"):
            return "record has no id"
        if kind == KIND.GOODS_RECEIPT:
            if not rec.get("po_number"):
                return "receipt names no purchase order"
            if _dec(rec.get("quantity")) is None:
                return "receipt has no quantity"
            return ""
        cur = str(rec.get("currency") or "")
        if len(cur) != 3 or not cur.isalpha() or not cur.isupper():
            return f"currency {cur!r} is not an ISO 4217 code"
        _dec(rec.get("total", 0))
        lines = rec.get("lines") or []
        if not isinstance(lines, list) or not all(isinstance(ln, dict) for ln in lines):
            return "lines are not a list of objects"
        for i, ln in enumerate(lines, start=1):
            for f in ("amount", "quantity", "unit_price", "unit_cost"):
                _dec(ln.get(f))
            lc = str(ln.get("currency") or cur)
            if len(lc) != 3 or not lc.isalpha() or not lc.isupper():
                return f"line {i}: currency {lc!r} is not an ISO 4217 code"
    except ValueError as exc:
        return str(exc)
    return ""


def _header(kind: str, system: str, rec: dict, entities: dict[str, LegalEntity]) -> dict:
    entity_code = truncated(rec.get("entity"), 20)
    common = dict(
        kind=kind,
        source_system=system,
        source_id=truncated(rec["external_id"], 100),
        entity=entities.get(entity_code),
        entity_code=entity_code,
        version=_digest(kind, rec),
    )
    status = STATUS_MAP.get(str(rec.get("status") or "").lower(), "pending")
    if kind == KIND.REQUISITION:
        return dict(
            common,
            number=truncated(rec.get("number"), 60),
            name=truncated(rec.get("title"), 300),
            party_code=truncated(rec.get("requester_code"), 40),
            party_name=truncated(rec.get("requester_name"), 200),
            requester_code=truncated(rec.get("requester_code"), 40),
            currency=truncated(rec.get("currency"), 3).upper(),
            total=_dec(rec.get("total")) or Decimal(0),
            business_status=status,
            submitted_at=as_datetime(rec.get("submitted_at")),
            # Ordered in the source before we saw it: its PO is in the ERP already.
            **(
                {"erp_document_number": truncated(rec["erp_po_number"], 60), "financial_status": "posted"}
                if rec.get("erp_po_number")
                else {}
            ),
            document_date=as_date(rec.get("submitted_at")) or timezone.now().date(),
        )
    if kind == KIND.PURCHASE_ORDER:
        return dict(
            common,
            number=truncated(rec.get("number"), 60),
            name=f"PO {truncated(rec.get('number'), 60)}",
            party_code=truncated(rec.get("supplier_code") or rec.get("vendor_number"), 40),
            party_name=truncated(rec.get("supplier_name"), 200),
            currency=truncated(rec.get("currency"), 3).upper(),
            total=_dec(rec.get("total")) or Decimal(0),
            business_status="approved",
            financial_status="posted",
            document_date=as_date(rec.get("order_date") or rec.get("created_at")) or timezone.now().date(),
            po_number=truncated(rec.get("number"), 60),
        )
    if kind == KIND.SUPPLIER_INVOICE:
        credit = rec.get("document_type") == "credit_note"
        total = _dec(rec.get("total")) or Decimal(0)
        return dict(
            common,
            number=truncated(rec.get("number"), 60),
            number_key=number_key(truncated(rec.get("number"), 60)),
            name=("Credit note " if credit else "Invoice ") + truncated(rec.get("number"), 60),
            party_code=truncated(rec.get("supplier_code"), 40),
            party_name=truncated(rec.get("supplier_name"), 200),
            party_tax_id=truncated(rec.get("supplier_tax_id"), 40),
            currency=truncated(rec.get("currency"), 3).upper(),
            total=-total if credit and total > 0 else total,
            business_status="approved",
            document_date=as_date(rec.get("invoice_date")),
            po_number=truncated(rec.get("po_number"), 60),
            corrects_number=printable(rec.get("corrects_number"), 60) if credit else "",
            submitted_at=as_datetime(rec.get("updated_at") or rec.get("invoice_date")),
        )
    # goods receipt: one receiving transaction (one line)
    return dict(
        common,
        number=truncated(rec.get("number") or rec["external_id"], 60),
        name=f"Receipt for {truncated(rec.get('po_number'), 60)} line {rec.get('po_line_no')}",
        currency="XXX",
        total=Decimal(0),
        business_status="approved",
        financial_status="posted",
        document_date=as_date(rec.get("received_on")),
        po_number=truncated(rec.get("po_number"), 60),
    )


def _lines(kind: str, doc: Document, rec: dict) -> list[DocumentLine]:
    if kind == KIND.GOODS_RECEIPT:
        return [
            DocumentLine(
                document=doc,
                line_no=1,
                external_id=truncated(rec["external_id"], 100),
                amount=Decimal(0),
                currency=doc.currency,
                quantity=_dec(rec.get("quantity")),
                po_line_no=_num(rec.get("po_line_no")),
                date=as_date(rec.get("received_on")),
                description=f"Received on {rec.get('received_on')}",
            )
        ]
    out = []
    sign = -1 if kind == KIND.SUPPLIER_INVOICE and rec.get("document_type") == "credit_note" else 1
    for i, ln in enumerate(rec.get("lines") or [], start=1):
        amount = _dec(ln.get("amount")) or Decimal(0)
        out.append(
            DocumentLine(
                document=doc,
                line_no=_num(ln.get("line_no")) or i,
                external_id=truncated(ln.get("external_id"), 100),
                date=as_date(ln.get("need_by_date") or ln.get("date")),
                category=truncated(ln.get("category"), 40),
                category_name=truncated(ln.get("category_name"), 100),
                description=truncated(ln.get("description"), 2000),
                amount=amount * sign if amount > 0 else amount,
                currency=truncated(ln.get("currency") or doc.currency, 3).upper(),
                quantity=_dec(ln.get("quantity")),
                unit_price=_dec(
                    ln.get("unit_price") if ln.get("unit_price") not in (None, "") else ln.get("unit_cost")
                ),
                uom=truncated(ln.get("uom"), 10),
                gl_account=truncated(ln.get("gl_account") or ln.get("account"), 40),
                cost_center=truncated(ln.get("cost_center"), 40),
                project=truncated(ln.get("project"), 40),
                tax_code=truncated(ln.get("tax_code"), 40),
                supplier_code=truncated(ln.get("supplier_code"), 40),
                po_line_no=_num(ln.get("po_line_no")),
            )
        )
    # Line numbers must be unique; sources that repeat them get positions instead. PO lines are
    # numbered by position everywhere: the ERP counts 10000, 20000..., receipts and invoices 1, 2...
    if kind == KIND.PURCHASE_ORDER or len({ln.line_no for ln in out}) != len(out):
        for i, ln in enumerate(out, start=1):
            ln.line_no = i
    return out


def _supplier_numbers(kind: str, records: list[dict]) -> set[str]:
    numbers = set()
    for rec in records:
        if kind in (KIND.PURCHASE_ORDER, KIND.SUPPLIER_INVOICE):
            numbers.add(truncated(rec.get("supplier_code") or rec.get("vendor_number"), 40))
        for ln in rec.get("lines") or []:
            if isinstance(ln, dict):
                numbers.add(truncated(ln.get("supplier_code"), 40))
    return numbers - {""}


def _crosswalked(crosswalk: dict[str, str], lines: list[DocumentLine]) -> list[DocumentLine]:
    """A supplier number the ERP does not know becomes the ERP vendor a confirmed link names."""
    for ln in lines:
        ln.supplier_code = crosswalk.get(ln.supplier_code, ln.supplier_code)
    return lines


def _resolve_invoice_parties(fields: dict) -> None:
    """E-invoices name the supplier by tax id and the buyer only by name: find the ERP's codes."""
    if fields["po_number"] and (fields["entity"] is None or not fields["party_code"]):
        po = Document.objects.filter(kind=KIND.PURCHASE_ORDER, number=fields["po_number"]).first()
        if po is not None:
            fields["entity"] = fields["entity"] or po.entity
            fields["entity_code"] = fields["entity_code"] or po.entity_code
            if not fields["party_code"]:
                fields["party_code"] = po.party_code
    if not fields["party_code"] and fields["party_tax_id"]:
        # Compared normalized (python-stdnum): "DE 136 695 976" is the ERP's "DE136695976"; one query.
        sup = supplier_for_tax_id(fields["party_tax_id"], entity=fields["entity"])
        if sup is not None:
            fields["party_code"] = sup.code
            if fields["entity"] is None:
                fields["entity"], fields["entity_code"] = sup.entity, sup.entity.code


def _with_payment_terms(headers: dict[str, dict], by_id: dict[str, dict]) -> None:
    """Due date, terms and discount for a page of invoice headers: the invoice's own, else its vendor's
    ERP terms. A credit note keeps only a due date of its own: it owes no payment and earns no discount."""
    party = {sid: (f["entity"].pk if f["entity"] else None, f["party_code"]) for sid, f in headers.items()}
    vendors = vendor_terms_for(parties=set(party.values()))
    for sid, fields in headers.items():
        credit = by_id[sid].get("document_type") == "credit_note"
        terms = invoice_terms(by_id[sid], fields["document_date"], None if credit else vendors.get(party[sid]))
        if credit:
            terms.discount_percent = terms.discount_due_date = None
        fields.update(terms.as_fields())


def _payment_terms_update(doc: Document, fields: dict, *, system: str, at) -> DocumentEvent | None:
    changed = {f: fields[f] for f in TERMS_FIELDS if getattr(doc, f) != fields[f]}
    if not changed:
        return None
    Document.objects.filter(pk=doc.pk).update(**changed, updated_at=at)
    for f, v in changed.items():
        setattr(doc, f, v)
    due = f"due {doc.due_date.isoformat()}" if doc.due_date else "no due date"
    return DocumentEvent(
        document=doc,
        at=at,
        system=system,
        action="payment_terms",
        message=f"Payment terms {doc.payment_terms or '(none)'}: {due}",
        correlation_id=doc.correlation_id,
    )


@transaction.atomic
def p2p_documents_upsert(*, system: str, kind: str, records: list[dict]) -> UpsertResult:
    """Store a page of canonical P2P records of one kind; returns what was created or changed."""
    result = UpsertResult()
    if not records:
        return result
    entities = {e.code: e for e in LegalEntity.objects.all()}
    by_id = {str(r["external_id"]): r for r in records}
    existing = {d.source_id: d for d in Document.objects.filter(source_system=system, source_id__in=list(by_id))}
    now = timezone.now()
    crosswalk = supplier_crosswalk(system=system, numbers=_supplier_numbers(kind, list(by_id.values())))
    lines, refs, events, new_docs = [], [], [], []
    headers = {}
    for source_id, rec in by_id.items():
        fields = _header(kind, system, rec, entities)
        if kind in (KIND.PURCHASE_ORDER, KIND.SUPPLIER_INVOICE):  # a requisition's party is its requester
            fields["party_code"] = crosswalk.get(fields["party_code"], fields["party_code"])
        if kind == KIND.SUPPLIER_INVOICE:
            _resolve_invoice_parties(fields)
        headers[source_id] = fields
    if kind == KIND.SUPPLIER_INVOICE:
        _with_payment_terms(headers, by_id)
    for source_id, rec in by_id.items():
        fields = headers[source_id]
        doc = existing.get(source_id)
        if doc is None:
            doc = Document(correlation_id=uuid.uuid4(), **fields)
            new_docs.append((doc, rec))
            continue
        if fields["version"] == doc.version and kind == KIND.SUPPLIER_INVOICE:
            # Terms are not part of the version (a posted invoice's new due date is no new content):
            # they follow the source, and invoices stored before terms were kept get theirs. Nothing
            # to validate or post again, so the document stays "unchanged" for the caller.
            if event := _payment_terms_update(doc, fields, system=system, at=now):
                events.append(event)
            result.unchanged.append(doc)
            continue
        if fields["version"] == doc.version:
            if doc.business_status != fields["business_status"] and kind != KIND.SUPPLIER_INVOICE:
                Document.objects.filter(pk=doc.pk).update(business_status=fields["business_status"], updated_at=now)
                events.append(
                    DocumentEvent(
                        document=doc,
                        at=now,
                        system=system,
                        action="status",
                        message=f"{system}: {doc.business_status} → {fields['business_status']}",
                        correlation_id=doc.correlation_id,
                    )
                )
                doc.business_status = fields["business_status"]
                result.changed.append(doc)
            else:
                result.unchanged.append(doc)
            continue
        if kind == KIND.PURCHASE_ORDER:
            # The ERP owns POs: its change is the truth. Lines are updated in place, so receipts and
            # invoice lines keep pointing at them.
            _po_update(doc, fields, _crosswalked(crosswalk, _lines(kind, doc, rec)))
            events.append(
                DocumentEvent(
                    document=doc,
                    at=now,
                    system=system,
                    action="changed",
                    message=f"PO changed in {system}",
                    correlation_id=doc.correlation_id,
                )
            )
            result.changed.append(doc)
            continue
        if doc.financial_status not in (Document.FinancialStatus.NOT_POSTED, Document.FinancialStatus.REJECTED):
            changed_after_posting(doc, fields["version"], system)
            result.unchanged.append(doc)
            continue
        supersede_items(doc, f"Superseded by a new version from {system}.")
        if kind == KIND.SUPPLIER_INVOICE:
            invoice_release(document=doc)
        events.append(document_version_replace(doc, fields, system=system, at=now, message=f"Changed in {system}"))
        lines.extend(_crosswalked(crosswalk, _lines(kind, doc, rec)))
        result.changed.append(doc)
    if new_docs:
        Document.objects.bulk_create([d for d, _ in new_docs])
        if new_docs[0][0].pk is None:
            ids = dict(
                Document.objects.filter(
                    source_system=system, source_id__in=[d.source_id for d, _ in new_docs]
                ).values_list("source_id", "pk")
            )
            for d, _ in new_docs:
                d.pk = d.id = ids[d.source_id]
        for doc, rec in new_docs:
            lines.extend(_crosswalked(crosswalk, _lines(kind, doc, rec)))
            refs.append(DocumentRef(document=doc, system=system, kind=kind, external_id=doc.source_id))
            what = {KIND.GOODS_RECEIPT: f"Receipt of {rec.get('quantity')} for {doc.po_number}"}.get(
                kind,
                f"Received from {system} ({len(rec.get('lines') or [])} line{'s' if len(rec.get('lines') or []) != 1 else ''}, "
                f"{doc.total:,.2f} {doc.currency})",
            )
            events.append(
                DocumentEvent(
                    document=doc,
                    at=now,
                    system="workbench",
                    action="received",
                    message=what,
                    correlation_id=doc.correlation_id,
                )
            )
            result.created.append(doc)
    DocumentLine.objects.bulk_create(lines)
    DocumentRef.objects.bulk_create(refs, ignore_conflicts=True)
    DocumentEvent.objects.bulk_create(events)
    p2p_link(documents=result.touched)
    if kind == KIND.GOODS_RECEIPT:  # items snoozed until these POs' goods arrive wake
        receipts_wake({d.po_number for d in result.created}, source=system)
    return result


def _po_update(doc: Document, fields: dict, new_lines: list[DocumentLine]) -> None:
    for k, v in fields.items():
        setattr(doc, k, v)
    doc.save()
    current = {ln.line_no: ln for ln in doc.lines.all()}
    keep = [
        "external_id",
        "description",
        "category",
        "amount",
        "currency",
        "quantity",
        "unit_price",
        "uom",
        "gl_account",
        "cost_center",
        "project",
        "tax_code",
    ]
    for ln in new_lines:
        old = current.pop(ln.line_no, None)
        if old is None:
            ln.save()
        else:
            for f in keep:
                setattr(old, f, getattr(ln, f))
            old.save(update_fields=keep)


def p2p_link(*, documents: list[Document]) -> None:
    """Tie receipts and invoices to their PO (and its lines), POs to their requisition; keep received totals.

    A page's POs and their lines are fetched once (indexed by kind and PO number), not per document.
    """
    pos_touched: set[int] = set()
    linked = [d for d in documents if d.kind in (KIND.GOODS_RECEIPT, KIND.SUPPLIER_INVOICE) and d.po_number]
    pos = {
        po.number: po
        for po in Document.objects.filter(kind=KIND.PURCHASE_ORDER, po_number__in={d.po_number for d in linked})
    }
    po_lines: dict[int, dict[int, int]] = defaultdict(dict)  # PO id -> line no -> line id
    receipts = [d for d in linked if d.kind == KIND.GOODS_RECEIPT and d.po_number in pos]
    if receipts:
        for po_id, no, pk in DocumentLine.objects.filter(document__in=[pos[d.po_number] for d in receipts]).values_list(
            "document_id", "line_no", "id"
        ):
            po_lines[po_id][no] = pk
        for ln in DocumentLine.objects.filter(document__in=receipts).select_related("document"):
            target = po_lines[pos[ln.document.po_number].pk].get(ln.po_line_no)
            if target and ln.po_line_id != target:
                DocumentLine.objects.filter(pk=ln.pk).update(po_line_id=target)
    for doc in linked:
        po = pos.get(doc.po_number)
        if po is None:
            continue
        if doc.parent_id != po.pk:
            Document.objects.filter(pk=doc.pk).update(parent=po)
            doc.parent = po
        if doc.kind == KIND.GOODS_RECEIPT:
            pos_touched.add(po.pk)
    for doc in documents:
        if doc.kind != KIND.PURCHASE_ORDER:
            continue
        req = Document.objects.filter(kind=KIND.REQUISITION, erp_document_number=doc.number).first()
        if req is not None and doc.parent_id != req.pk:
            Document.objects.filter(pk=doc.pk).update(parent=req)
        # Receipts and invoices that arrived before their PO are tied to it now.
        early = list(
            Document.objects.filter(
                kind__in=[KIND.GOODS_RECEIPT, KIND.SUPPLIER_INVOICE], po_number=doc.number, parent__isnull=True
            )
        )
        if early:
            p2p_link(documents=early)
        pos_touched.add(doc.pk)
    for po_id in pos_touched:
        po_received_refresh(po_id)


def po_received_refresh(po_id: int) -> None:
    """PO lines' received quantity = the sum of their receipts (receipts can arrive in any order)."""
    received = dict(
        DocumentLine.objects.filter(po_line__document_id=po_id, document__kind=KIND.GOODS_RECEIPT)
        .values("po_line_id")
        .annotate(q=Sum("quantity"))
        .values_list("po_line_id", "q")
    )
    for ln in DocumentLine.objects.filter(document_id=po_id):
        q = received.get(ln.pk) or Decimal(0)
        if ln.received_quantity != q:
            DocumentLine.objects.filter(pk=ln.pk).update(received_quantity=q)


def _matched_quantity(ln: DocumentLine) -> Decimal:
    return ln.quantity if ln.quantity is not None else Decimal(1)  # as the match counts an amount-only line


def invoice_consume(*, document: Document) -> bool:
    """Count a matched invoice's quantities against its PO lines, once (compare-and-set on match_status)."""
    if not Document.objects.filter(pk=document.pk).exclude(match_status="matched").update(match_status="matched"):
        return False
    for ln in document.lines.filter(po_line__isnull=False):
        DocumentLine.objects.filter(pk=ln.po_line_id).update(
            invoiced_quantity=F("invoiced_quantity") + _matched_quantity(ln)
        )
    document.match_status = "matched"
    return True


def invoice_release(*, document: Document) -> bool:
    """Undo `invoice_consume` (the ERP refused the invoice, it was rejected, or a new version replaces it), once."""
    if not Document.objects.filter(pk=document.pk, match_status="matched").update(match_status=""):
        return False
    for ln in document.lines.filter(po_line__isnull=False):
        DocumentLine.objects.filter(pk=ln.po_line_id).update(
            invoiced_quantity=F("invoiced_quantity") - _matched_quantity(ln)
        )
    document.match_status = ""
    return True
