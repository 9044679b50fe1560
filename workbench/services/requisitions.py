"""Requisition checks before approval routing: the synchronous validation the procurement suite calls.

`requisition_check` runs the requisition rules on an unsaved copy of the requisition (nothing is
stored, nothing is raised), so the requester sees the answer at once and fixes it in the source.
Master data is cached for a few seconds per process: the call must answer in milliseconds, and the
ERP's structures change on the master-data schedule, not per request.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from workbench.models import Document, DocumentLine, LegalEntity
from workbench.money import parse_amount
from workbench.rules import Finding, rules_for
from workbench.rules.context import MasterDataContext
from workbench.rules.p2p_context import P2PContext, period_of_day
from workbench.services.p2p_documents import check_p2p_record
from workbench.values import as_date, as_datetime, truncated

CACHE_SECONDS = 10
_cache: dict[str, tuple[float, MasterDataContext]] = {}
_lock = threading.Lock()


def _context() -> MasterDataContext:
    with _lock:
        hit = _cache.get("ctx")
        if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
            ctx = hit[1]
        else:
            ctx = MasterDataContext.load()
            ctx._p2p = P2PContext()
            _cache["ctx"] = (time.monotonic(), ctx)
    # Budgets and the batch state are per call; master data is shared.
    return dataclasses.replace(ctx, _p2p=ctx._p2p.clone())


def clear_cache() -> None:
    with _lock:
        _cache.clear()


@dataclass
class CheckResult:
    status: str  # "valid" | "invalid"
    findings: list[Finding]

    @property
    def messages(self) -> list[str]:
        return [f.message for f in self.findings]


def requisition_document(record: dict, entities: dict[str, LegalEntity]) -> tuple[Document, list[DocumentLine]]:
    """An unsaved requisition and its lines, from a canonical record (see connectors/README.md)."""
    entity_code = truncated(record.get("entity"), 20)
    doc = Document(
        kind=Document.Kind.REQUISITION,
        source_system="api",
        source_id=truncated(record.get("external_id"), 100),
        number=truncated(record.get("number"), 60),
        name=truncated(record.get("title"), 300),
        entity=entities.get(entity_code),
        entity_code=entity_code,
        party_code=truncated(record.get("requester_code"), 40),
        requester_code=truncated(record.get("requester_code"), 40),
        currency=truncated(record.get("currency"), 3).upper(),
        total=parse_amount(record.get("total", 0)),
        business_status="pending",
        submitted_at=as_datetime(record.get("submitted_at")),
        document_date=as_date(record.get("submitted_at")) or timezone.now().date(),
    )
    doc.pk = None
    lines = []
    for i, ln in enumerate(record.get("lines") or [], start=1):
        qty = ln.get("quantity")
        price = ln.get("unit_price")
        amount = (
            parse_amount(ln.get("amount"))
            if ln.get("amount") not in (None, "")
            else (parse_amount(qty or 1) * parse_amount(price or 0))
        )
        lines.append(
            DocumentLine(
                document=doc,
                line_no=i,
                description=truncated(ln.get("description"), 500),
                category=truncated(ln.get("category"), 40),
                quantity=parse_amount(qty) if qty not in (None, "") else None,
                unit_price=parse_amount(price) if price not in (None, "") else None,
                amount=amount,
                currency=truncated(ln.get("currency") or doc.currency, 3).upper(),
                gl_account=truncated(ln.get("gl_account"), 40),
                cost_center=truncated(ln.get("cost_center"), 40),
                project=truncated(ln.get("project"), 40),
                supplier_code=truncated(ln.get("supplier_code"), 40),
                date=as_date(ln.get("need_by_date")),
            )
        )
    if not record.get("total") and lines:
        doc.total = sum((ln.amount for ln in lines), Decimal(0))
    return doc, lines


def requisition_check(record: dict) -> CheckResult:
    """Validate a requisition as submitted; raises ValueError with a clear message on a malformed record."""
    problem = check_p2p_record(Document.Kind.REQUISITION, {"external_id": record.get("external_id") or "new", **record})
    if problem:
        raise ValueError(problem)
    if not record.get("lines"):
        raise ValueError("a requisition needs at least one line")
    ctx = _context()
    doc, lines = requisition_document(record, ctx.entities)
    keys = {
        (doc.entity_id, ln.cost_center, ln.gl_account, period_of_day(doc.document_date))
        for ln in lines
        if ln.cost_center and ln.gl_account and doc.entity_id
    }
    # Its own earlier copy (same source id) must not count against it.
    existing = (
        Document.objects.filter(kind=Document.Kind.REQUISITION, source_id=doc.source_id)
        .values_list("pk", flat=True)
        .first()
        if doc.source_id
        else None
    )
    ctx.p2p.budgets.load(keys, existing)
    findings: list[Finding] = []
    for check in rules_for(Document.Kind.REQUISITION).values():
        findings.extend(check(doc, lines, ctx))
    return CheckResult("invalid" if findings else "valid", findings)
