"""Posted documents reconciled, and the nightly proof: does the ERP still hold what we posted?

Every `ErpPosting` of the connection (not one replaced by a re-post) is looked up again in the ERP
through the connector's streams: purchase invoices (expense reports and supplier invoices) and
purchase credit memos by the ERP's id, accrual journals by their document number (the ERP's amount
of a journal is the sum of its entries' debits). The arithmetic is `workbench.ledger_proof`'s; what
it finds becomes work in `workbench.services.reconciliation_items`. A kind whose stream this
connector does not offer is left unchecked (said in the run's message), never reported missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from connectors.base import Page
from sync.models import ProofLine, ReconciliationRun
from sync.runs import read_with_retries
from workbench.ledger_proof import CANCELED, Held, Posted, document_drift, proof
from workbench.models import ErpPosting
from workbench.money import parse_amount
from workbench.services.reconciliation_items import posting_drift_record

INVOICES = "purchase_invoices"
CREDIT_MEMOS = "purchase_credit_memos"
GL_ENTRIES = "gl_entries"
STREAM_OF_KIND = {
    ErpPosting.Kind.EXPENSE_REPORT: INVOICES,
    ErpPosting.Kind.SUPPLIER_INVOICE: INVOICES,
    ErpPosting.Kind.CREDIT_MEMO: CREDIT_MEMOS,
    ErpPosting.Kind.ACCRUAL: GL_ENTRIES,
    ErpPosting.Kind.ACCRUAL_REVERSAL: GL_ENTRIES,
}
POSTED_STATUSES = {"open", "paid"}  # a draft or canceled copy holds nothing in the books


@dataclass
class PostingResult:
    checked: int = 0
    drifted: int = 0
    unchecked: dict[str, int] = field(default_factory=dict)  # stream -> postings not looked up
    lines: int = 0
    unequal: int = 0

    def message(self) -> str:
        if not self.checked and not self.unchecked:
            return ""
        text = f" Posted documents: {self.checked} checked, {self.drifted} not held by the ERP as posted"
        text += f"; proof: {self.lines} lines, {self.unequal} with a difference."
        for stream, n in self.unchecked.items():
            text += f" {n} not checked (this ERP connector has no {stream} stream)."
        return text


def _document(rec: dict, status_ok: bool = True) -> Held | None:
    try:
        # We send net lines and the ERP computes the tax: compare what the lines add up to.
        net = rec.get("total_excluding_tax")
        amount = parse_amount(rec.get("total") if net is None else net)
    except ValueError:
        return None  # unreadable: treated as not found, and so reported for a person to look at
    status = str(rec.get("status") or "").lower()
    return Held(
        amount=amount,
        currency=str(rec.get("currency") or "")[:3].upper(),
        status=status if status in POSTED_STATUSES else CANCELED,
        number=str(rec.get("number") or ""),
    )


def _read_by_id(connection, connector, stream: str, wanted: set[str]) -> dict[str, Held | None]:
    found: dict[str, Held | None] = {}

    def on_page(page: Page) -> None:
        for rec in page.records:
            key = str(rec.get("external_id") or "")
            if key in wanted:
                found[key] = _document(rec)

    read_with_retries(connection, lambda: connector.read(stream, None), on_page)
    return found


def _read_journals(connection, connector, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], Decimal]:
    debits: dict[tuple[str, str], Decimal] = {}
    seen: set[str] = set()  # entries read again after a retry count once

    def on_page(page: Page) -> None:
        for rec in page.records:
            key = (str(rec.get("entity") or ""), str(rec.get("document_number") or ""))
            ident = str(rec.get("external_id") or rec.get("entry_number") or "")
            if key not in wanted or ident in seen:
                continue
            seen.add(ident)
            try:
                debit = parse_amount(rec.get("debit") or 0)
            except ValueError:
                continue
            debits[key] = debits.get(key, Decimal(0)) + debit

    read_with_retries(connection, lambda: connector.read(GL_ENTRIES, None), on_page)
    return debits


def _held(connection, connector, postings: list[ErpPosting], offered: set[str]) -> tuple[dict, dict[str, int]]:
    """posting id -> what the ERP holds (None: not found), for postings whose stream is offered."""
    by_stream: dict[str, list[ErpPosting]] = {}
    for p in postings:
        by_stream.setdefault(STREAM_OF_KIND[p.kind], []).append(p)
    held: dict[int, Held | None] = {}
    unchecked = {s: len(ps) for s, ps in by_stream.items() if s not in offered}
    for stream in (INVOICES, CREDIT_MEMOS):
        if stream in by_stream and stream in offered:
            found = _read_by_id(connection, connector, stream, {p.erp_id for p in by_stream[stream]})
            held.update({p.pk: found.get(p.erp_id) for p in by_stream[stream]})
    if GL_ENTRIES in by_stream and GL_ENTRIES in offered:
        journals = by_stream[GL_ENTRIES]
        debits = _read_journals(connection, connector, {(p.entity.code, p.erp_id) for p in journals})
        for p in journals:
            total = debits.get((p.entity.code, p.erp_id))
            # Journal entries carry no currency of their own: they are in the entity's books' currency.
            held[p.pk] = None if total is None else Held(amount=total, currency=p.currency, number=p.erp_id)
    return held, unchecked


def posted_of(postings: Iterable[ErpPosting]) -> list[Posted]:
    return [Posted(p.pk, p.kind, p.entity_id, p.period, p.currency, p.amount) for p in postings]


def reconcile_postings(run: ReconciliationRun, connector) -> PostingResult:
    """Look every posting of the run's connection up in the ERP, store the proof, raise the drift as work."""
    connection = run.connection
    postings = list(
        ErpPosting.objects.filter(connection=connection, superseded_at__isnull=True).select_related("entity")
    )
    offered = {s.name for s in connector.discover()}
    held, unchecked = _held(connection, connector, postings, offered) if postings else ({}, {})
    checked = [p for p in posted_of(postings) if p.key in held]
    drifts = [d for d in (document_drift(p, held[p.key]) for p in checked) if d is not None]
    lines = proof(checked, held)
    ProofLine.objects.filter(run=run).delete()
    ProofLine.objects.bulk_create(
        [
            ProofLine(
                run=run,
                entity_id=ln.entity,
                period=ln.period,
                currency=ln.currency,
                ours=ln.ours,
                erp=ln.erp,
                difference=ln.difference,
                documents=ln.documents,
            )
            for ln in lines
        ]
    )
    posting_drift_record(connection=connection, run_id=run.pk, drifts=drifts, lines=lines)
    return PostingResult(
        checked=len(checked),
        drifted=len(drifts),
        unchecked=unchecked,
        lines=len(lines),
        unequal=sum(1 for ln in lines if ln.difference),
    )
