"""Re-validation and what follows it: a document checked again goes on, or back to a person.

`validation.documents_validate` judges documents and keeps their exception items in step. These
services decide what a clean (or still blocked) result means: a clean expense report or invoice
is queued for posting, a clean pending requisition goes to its approvers, a retry that is still
blocked goes back to a person pointing at what blocks it, and a queued posting of someone who
just left is withdrawn. The worker's tasks and the syncs call them; each is safe to run twice.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from workbench.models import Document, DocumentLine, ExceptionItem, GLAccount
from workbench.models.exceptions import ACTIVE_STATUSES, Status
from workbench.rules import RULES
from workbench.rules.context import MasterDataContext
from workbench.services.approvals import requisition_send_for_approval
from workbench.services.exception_items import exception_item_transition
from workbench.services.postings import postings_enqueue, postings_withdraw
from workbench.services.trace import document_event_add
from workbench.services.validation import documents_validate

FIN = Document.FinancialStatus
BATCH = 200


def _postable(docs: list[Document]) -> list[Document]:
    """Clean documents a person has not refused to post: an ERP refusal is re-posted by a fix or a retry."""
    return [d for d in docs if d.financial_status == FIN.NOT_POSTED]


def document_revalidate(*, document_id: int, actor_id: int | None = None, repost: bool = False) -> str:
    """After a fix, an override or a retry: check the document again, then post it, route it, or
    hand it back. Returns "clean", "blocked" or "gone"."""
    doc = Document.objects.filter(pk=document_id).first()
    if doc is None:
        return "gone"
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    with transaction.atomic():
        clean = documents_validate(documents=[doc], actor=actor)
        document_event_add(
            document=doc,
            system="workbench",
            action="revalidated",
            actor=actor,
            message="Re-validated: " + ("all rules pass" if clean else "still has open exceptions"),
        )
        if clean and repost:
            postings_enqueue(clean)
        if clean and doc.kind == Document.Kind.REQUISITION and doc.business_status == Document.BusinessStatus.PENDING:
            requisition_send_for_approval(doc)  # a fixed or overridden requisition goes on to its approvers
        elif not clean:
            _reopen_waiting_on(doc, actor)
    return "clean" if clean else "blocked"


def _reopen_waiting_on(doc: Document, actor) -> None:
    """A retry that re-validation stops goes back to a person, pointing at what blocks it."""
    blocking = list(
        ExceptionItem.objects.filter(
            document=doc, status__in=[Status.OPEN, Status.IN_PROGRESS], code__in=list(RULES)
        ).values_list("code", flat=True)
    )
    waiting = ExceptionItem.objects.filter(document=doc, status=Status.WAITING, snoozed_until=None, wait_for="")
    for item in waiting.exclude(code__in=list(RULES)):  # a snoozed item waits for its own date or event
        exception_item_transition(
            item=item,
            to=Status.OPEN,
            actor=actor,
            action="still_blocked",
            reason="Not re-posted: fix " + ", ".join(sorted(set(blocking))) + " first.",
        )


def documents_revalidate(
    docs: list[Document], *, ctx: MasterDataContext | None = None, actor=None, run_id: int | None = None
) -> list[Document]:
    """Check these documents again in batches; queue the clean unposted ones, route clean pending
    requisitions. Returns the clean documents."""
    ctx = ctx or MasterDataContext.load()
    clean_all: list[Document] = []
    for start in range(0, len(docs), BATCH):
        with transaction.atomic():
            clean = documents_validate(documents=docs[start : start + BATCH], ctx=ctx, actor=actor)
            postings_enqueue(_postable(clean), run_id=run_id)
            for doc in clean:
                if doc.kind == Document.Kind.REQUISITION and doc.business_status == Document.BusinessStatus.PENDING:
                    requisition_send_for_approval(doc)
        clean_all += clean
    return clean_all


def documents_revalidate_open() -> int:
    """New or changed master data can fix (or break) documents waiting in the queue."""
    docs = list(
        Document.objects.filter(
            exceptions__status__in=[Status.OPEN, Status.IN_PROGRESS], exceptions__category__in=["master_data", "policy"]
        ).distinct()
    )
    seen = {d.pk for d in docs}
    on_refused = [d for d in documents_on_refused_accounts() if d.pk not in seen]
    clean = {d.pk for d in documents_revalidate(docs + on_refused)}
    # A posting queued before the ERP blocked its account would only be refused there: take it back.
    postings_withdraw(
        [d for d in on_refused if d.pk not in clean],
        reason="a GL account of the report is now refused by the ERP",
    )
    return len(docs) + len(on_refused)


def documents_on_refused_accounts() -> list[Document]:
    """Unposted documents with a line on an account the ERP now refuses (blocked, not a posting account,
    no direct posting) and no open item saying so yet: the ERP changed the account after they were checked.
    A supplier invoice's account is its PO line's, as the posting sends it."""
    refused: dict[int, set[str]] = {}
    for entity_id, code in GLAccount.objects.filter(
        Q(blocked=True) | ~Q(account_type=GLAccount.POSTING) | Q(direct_posting=False)
    ).values_list("entity_id", "code"):
        refused.setdefault(entity_id, set()).add(code)
    if not refused:
        return []
    on_account = Q()
    for entity_id, codes in refused.items():
        on_account |= Q(document__entity_id=entity_id) & (Q(gl_account__in=codes) | Q(po_line__gl_account__in=codes))
    ids = (
        DocumentLine.objects.filter(
            on_account, document__financial_status__in=[FIN.NOT_POSTED, FIN.POSTING, FIN.REJECTED]
        )
        .exclude(document__kind=Document.Kind.PURCHASE_ORDER)
        .exclude(document__business_status=Document.BusinessStatus.REJECTED)
        .values_list("document_id", flat=True)
        .distinct()
    )
    # Already said (or overridden by a person): the usual re-validation of open items covers those.
    flagged = ExceptionItem.objects.filter(
        code="BLOCKED_GL_ACCOUNT", status__in=[*ACTIVE_STATUSES, Status.OVERRIDDEN], document__isnull=False
    ).values_list("document_id", flat=True)
    return list(Document.objects.filter(pk__in=list(ids)).exclude(pk__in=flagged).order_by("pk"))


def invoices_revalidate_for(*, po_numbers: set[str]) -> int:
    """A receipt (or a PO) arrived: invoices waiting on it are matched again."""
    po_numbers = {n for n in po_numbers if n}
    if not po_numbers:
        return 0
    docs = list(
        Document.objects.filter(
            kind=Document.Kind.SUPPLIER_INVOICE, po_number__in=po_numbers, financial_status=FIN.NOT_POSTED
        )
    )
    documents_revalidate(docs)
    return len(docs)


def invoices_rematch_open(*, entity_id: int | None = None) -> int:
    """Tolerances changed: invoices with open match exceptions are matched again (and posted if now clean)."""
    items = ExceptionItem.objects.filter(
        code__in=["PRICE_VARIANCE", "QUANTITY_VARIANCE"], status__in=[Status.OPEN, Status.IN_PROGRESS]
    )
    if entity_id is not None:
        items = items.filter(entity_id=entity_id)
    ids = list(items.values_list("document_id", flat=True).distinct())
    documents_revalidate(list(Document.objects.filter(pk__in=ids)))
    return len(ids)


def employees_reports_revalidate(employees: set[tuple[str, str]]) -> int:
    """Re-check the unposted expense reports of these (entity, employee) pairs; clean ones are queued.

    Reports queued for posting but not yet sent are checked too: a person deactivated meanwhile
    must not be paid, so their queued postings are withdrawn.
    """
    if not employees:
        return 0
    docs = [
        d
        for d in Document.objects.filter(
            kind=Document.Kind.EXPENSE_REPORT,
            party_code__in={c for _, c in employees},
            financial_status__in=[FIN.NOT_POSTED, FIN.REJECTED, FIN.POSTING],
        )
        if (d.entity_code, d.party_code) in employees
    ]
    if not docs:
        return 0
    clean = documents_validate(documents=docs, ctx=MasterDataContext.load())
    clean_ids = {d.pk for d in clean}
    postings_withdraw(
        [d for d in docs if d.pk not in clean_ids],
        reason="re-checked after a change in the directory, it now has an open exception",
    )
    postings_enqueue(clean)
    return len(docs)
