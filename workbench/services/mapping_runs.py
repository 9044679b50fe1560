"""Applying a saved mapping rule version: map the affected lines, re-validate their documents (the
rule named as the cause of what it resolves), queue the clean ones for posting. Runs on a worker
(`workbench.jobs.MAPPING_RUN`), batch by batch with its progress saved, and is safe to run twice."""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from workbench.models import Document, DocumentLine, ExceptionItem
from workbench.models.exceptions import ACTIVE_STATUSES
from workbench.models.mappings import MappingRule, MappingRun
from workbench.rules.context import MasterDataContext
from workbench.rules.mapping_index import MappingIndex
from workbench.services.mappings import BATCH, mapping_documents, mappings_apply
from workbench.services.postings import postings_enqueue
from workbench.services.validation import documents_validate


def mapping_run_execute(run: MappingRun) -> MappingRun:
    """Apply one rule version to the documents it affects; progress is saved per batch."""
    rule = MappingRule.objects.select_related("entity").get(pk=run.rule_id)
    if rule.version != run.version or not rule.active:
        MappingRun.objects.filter(pk=run.pk).update(
            status=MappingRun.Status.DONE,
            finished_at=timezone.now(),
            message="A newer version of the rule replaced this one.",
        )
        run.refresh_from_db()
        return run
    doc_ids = mapping_documents(rule)  # the documents (and batches) the preview replayed
    MappingRun.objects.filter(pk=run.pk).update(
        status=MappingRun.Status.RUNNING, total=len(doc_ids), started_at=timezone.now()
    )
    ctx = MasterDataContext.load()
    index = MappingIndex([rule])
    cause = f"Resolved by mapping rule #{rule.pk} v{rule.version}: {rule}"
    resolved = queued = 0
    for i in range(0, len(doc_ids), BATCH):
        batch = doc_ids[i : i + BATCH]
        with transaction.atomic():
            docs = list(Document.objects.filter(pk__in=batch))
            before = ExceptionItem.objects.filter(document_id__in=batch, status__in=ACTIVE_STATUSES).count()
            lines = defaultdict(list)
            for ln in DocumentLine.objects.filter(document_id__in=batch).order_by("document_id", "line_no"):
                lines[ln.document_id].append(ln)
            mappings_apply(documents=docs, lines_by_doc=lines, index=index, ctx=ctx)
            clean = documents_validate(documents=docs, ctx=ctx, cause=cause)
            after = ExceptionItem.objects.filter(document_id__in=batch, status__in=ACTIVE_STATUSES).count()
            queued += len(postings_enqueue([d for d in clean if d.financial_status in ("not_posted", "rejected")]))
            resolved += max(0, before - after)
        MappingRun.objects.filter(pk=run.pk).update(
            done=min(len(doc_ids), i + BATCH), resolved=resolved, queued_for_posting=queued
        )
    MappingRun.objects.filter(pk=run.pk).update(status=MappingRun.Status.DONE, finished_at=timezone.now())
    run.refresh_from_db()
    return run
