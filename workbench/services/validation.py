"""Validate documents against the rules and keep their exception items in step."""

from __future__ import annotations

from workbench.models import Document, DocumentLine
from workbench.rules import CODES, Finding, rules_for
from workbench.rules.context import MasterDataContext
from workbench.services.exception_items import exception_items_reconcile
from workbench.services.mappings import mappings_apply
from workbench.services.matching import match_results_save


def documents_validate(
    *, documents: list[Document], ctx: MasterDataContext | None = None, actor=None, cause: str = ""
) -> list[Document]:
    """Run every rule on these documents; raise, reopen or resolve their items.

    Returns the documents with nothing blocking them (ready to post). Lines are fetched in one
    query and master data once per call, so a page of 100 reports costs a few queries. Values an
    admin's mapping rule covers are mapped first; `cause` names what resolved items were fixed by.
    """
    if not documents:
        return []
    ctx = ctx or MasterDataContext.load()
    # Oldest first: the first invoice for some goods is the one that consumes the receipt.
    documents = sorted(documents, key=lambda d: d.pk or 0)
    lines_by_doc: dict[int, list[DocumentLine]] = {}
    for ln in DocumentLine.objects.filter(document_id__in=[d.pk for d in documents]).order_by("document_id", "line_no"):
        lines_by_doc.setdefault(ln.document_id, []).append(ln)
    if ctx.mappings:
        mappings_apply(documents=documents, lines_by_doc=lines_by_doc, index=ctx.mappings, ctx=ctx)
    results: list[tuple[Document, list[Finding]]] = []
    if any(d.kind != Document.Kind.EXPENSE_REPORT for d in documents):
        ctx.p2p.prepare(documents)
    codes: set[str] = set()
    for doc in documents:
        if doc.entity_id is None and doc.entity_code in ctx.entities:
            doc.entity = ctx.entities[doc.entity_code]  # master data arrived after the document
            Document.objects.filter(pk=doc.pk).update(entity=doc.entity)
        lines = lines_by_doc.get(doc.pk, [])
        findings: list[Finding] = []
        rules = rules_for(doc.kind) if doc.business_status != Document.BusinessStatus.REJECTED else {}
        codes.update(rules_for(doc.kind))
        for check in rules.values():
            findings.extend(check(doc, lines, ctx))
        results.append((doc, findings))
    clean = exception_items_reconcile(results=results, codes=codes, actor=actor, cause=cause)
    if ctx._p2p is not None and ctx.p2p.match_results:
        match_results_save(results=ctx.p2p.match_results, clean={d.pk for d in clean})
    if ctx._p2p is not None:
        ctx.p2p.reset_batch()
    return clean


def blocking_findings(doc: Document) -> list[str]:
    """What re-validating the document now will still find blocking it, e.g. ["CLOSED_PERIOD on line 2"].

    The rules are run on the document as it is stored (read-only, nothing is raised or resolved), so the
    answer is what the worker's re-validation will find, not a guess from the items' statuses.
    """
    ctx = MasterDataContext.load()
    if doc.kind != "expense_report":
        ctx.p2p.prepare([doc])
    lines = list(doc.lines.order_by("line_no"))
    held = []
    for check in rules_for(doc.kind).values():
        for finding in check(doc, lines, ctx):
            if CODES[finding.code].blocking:
                where = f" on line {finding.line.line_no}" if finding.line is not None else ""
                held.append(f"{finding.code}{where}")
    return list(dict.fromkeys(held))
