"""Mapping rules: test a rule's impact, save it (versioned), apply it to what it fixes, map new documents.

- `mapping_items(rule)` / `mapping_documents(rule)`: the one selection both sides use: the open items
  of the rule's root causes (one exception group per value and entity) on documents the rule covers
  (source system, effective dates per line date). Applying re-validates exactly these documents.
- `mapping_impact(rule)`: what an unsaved (or saved) rule would resolve now: open items, documents,
  money per currency, sample lines (before -> after), and what it leaves out of its root causes. The
  documents are mapped and their rules run as applying does, inside a transaction that is rolled back,
  so the preview's numbers are the application's (including items the new value also clears, such as
  a requisition's budget check) and not an estimate from the groups.
- `mapping_rule_save(...)`: validates the target against the ERP's master data, saves a new version
  with its author and reason, and queues `MappingRun` for a worker.
- `mapping_run_execute(run)` (mapping_runs.py): maps the affected lines, re-validates their documents
  (items resolved name the rule as their cause) and queues the clean ones for posting, reporting progress.
- `mappings_apply(...)`: called by validation for every document, so later arrivals are mapped too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q, Sum
from django.forms.models import model_to_dict
from django.utils import timezone

from workbench import jobs
from workbench.errors import InvalidCorrection
from workbench.models import (
    CostCenter,
    Document,
    DocumentEvent,
    DocumentLine,
    ExceptionGroup,
    ExceptionItem,
    GLAccount,
    LegalEntity,
    TaxCode,
)
from workbench.models.exceptions import ACTIVE_STATUSES
from workbench.models.mappings import MappingRule, MappingRuleVersion, MappingRun
from workbench.rules import rules_for
from workbench.rules.context import MasterDataContext
from workbench.rules.mapping_index import MappingIndex
from workbench.services.exception_items import fingerprint

# The exception codes a mapping of each field can resolve (their groups are keyed by the unmapped value).
FIELD_CODES = {
    "cost_center": ["UNKNOWN_COST_CENTER"],
    "tax_code": ["INVALID_TAX_CODE"],
    "entity": ["UNKNOWN_ENTITY"],
    "gl_account": ["BLOCKED_GL_ACCOUNT"],
}
BATCH = 200


def mapping_target_problem(rule: MappingRule) -> str:
    """Why the rule's target is not a valid ERP value, or ""."""
    target = rule.target_value.strip()
    if not target:
        return "Choose the ERP value the source value stands for."
    if rule.field == "entity":
        return (
            "" if LegalEntity.objects.filter(code=target).exists() else f"'{target}' is not a legal entity in the ERP."
        )
    if rule.field == "gl_account":
        return _gl_account_problem(rule, target)
    model = {"cost_center": CostCenter, "tax_code": TaxCode}.get(rule.field)
    if model is None:
        return ""
    qs = model.objects.filter(code=target)
    if rule.entity_id:
        qs = qs.filter(entity_id=rule.entity_id)
    if rule.field == "cost_center":
        qs = qs.filter(active=True)
    if not qs.exists():
        where = f" of {rule.entity.code}" if rule.entity_id else ""
        return f"'{target}' is not an active {rule.get_field_display().lower()}{where} in the ERP."
    return ""


def _gl_account_problem(rule: MappingRule, target: str) -> str:
    """A rule may only send lines to an account the ERP posts to, in every entity the rule covers."""
    accounts = GLAccount.objects.filter(code=target).select_related("entity").order_by("entity__code")
    if rule.entity_id:
        accounts = accounts.filter(entity_id=rule.entity_id)
    accounts = list(accounts)
    if not accounts:
        where = f" of {rule.entity.code}" if rule.entity_id else ""
        return f"'{target}' is not a GL account{where} in the ERP."
    for account in accounts:
        if account.refusal:
            return (
                f"GL account '{target}' {account.refusal} for {account.entity.code}: the ERP would refuse every "
                "line mapped to it. Choose a posting account that is open for direct posting."
            )
    return ""


def mapping_rules_refused_targets(rules) -> dict[int, str]:
    """rule id -> why the ERP now refuses its GL account target (blocked since the rule was saved...).
    One query for the whole list."""
    rules = [r for r in rules if r.field == "gl_account" and r.active]
    if not rules:
        return {}
    accounts: dict[str, list[GLAccount]] = {}
    for a in GLAccount.objects.filter(code__in={r.target_value for r in rules}).select_related("entity"):
        accounts.setdefault(a.code, []).append(a)
    out = {}
    for r in rules:
        covered = [a for a in accounts.get(r.target_value, []) if not r.entity_id or a.entity_id == r.entity_id]
        if not covered:
            out[r.pk] = "not a GL account in the ERP"
            continue
        refused = next((a for a in covered if a.refusal), None)
        if refused is not None:
            out[r.pk] = f"{refused.refusal} ({refused.entity.code})"
    return out


def _groups(rule: MappingRule) -> list[int]:
    """The exception groups of the values this rule maps (group keys are code:entity:value).

    A legal-entity rule is about documents whose entity is unknown: like `MappingIndex.find`, its own
    entity does not narrow it (the group's entity part is the unknown code itself).
    """
    out = []
    scoped = rule.entity_id and rule.field != "entity"
    for code in FIELD_CODES.get(rule.field, []):
        prefix = f"{code}:{rule.entity.code}:" if scoped else f"{code}:"
        if rule.source_value and scoped:
            keys = ExceptionGroup.objects.filter(root_cause_key=prefix + rule.source_value).values_list(
                "pk", "root_cause_key"
            )
        else:
            keys = ExceptionGroup.objects.filter(root_cause_key__startswith=prefix).values_list("pk", "root_cause_key")
        for pk, key in keys:
            if rule.matches(_group_value(rule, key)):
                out.append(pk)
    return out


def _group_value(rule: MappingRule, key: str) -> str:
    """The source value a group is about, as a rule matches it ("(none)": a document naming no entity)."""
    value = key.split(":", 2)[2] if key.count(":") >= 2 else ""
    return "" if rule.field == "entity" and value == "(none)" else value


def mapping_items(rule: MappingRule):
    """The open items of the rule's root causes on documents it covers (source system; line dates)."""
    qs = ExceptionItem.objects.filter(group_id__in=_groups(rule), status__in=ACTIVE_STATUSES)
    if rule.source_system:
        qs = qs.filter(document__source_system=rule.source_system)
    if rule.effective_from:
        qs = qs.filter(Q(line__date__gte=rule.effective_from) | Q(line__date__isnull=True))
    if rule.effective_to:
        qs = qs.filter(Q(line__date__lte=rule.effective_to) | Q(line__date__isnull=True))
    return qs


def mapping_documents(rule: MappingRule) -> list[int]:
    """The documents applying the rule maps and re-validates, in the order (and batches) it takes them."""
    return sorted(set(mapping_items(rule).values_list("document_id", flat=True)))


@dataclass
class Impact:
    items: int = 0  # open exceptions re-validation would resolve (the rule's own and what the new value clears)
    documents: int = 0  # documents mapped and re-validated
    amounts: list[tuple[str, Decimal]] = field(default_factory=list)  # (currency, amount at risk) of those items
    samples: list[dict] = field(default_factory=list)  # a few lines: document, line, before, after
    problem: str = ""
    raised: int = 0  # exceptions re-validation would raise or reopen (e.g. the new cost center's budget)
    item_ids: set[int] = field(default_factory=set)
    # What the rule leaves out of its root causes: {"items", "amounts", "reasons": [(why, items)], "groups"}
    left_out: dict | None = None


def mapping_impact(rule: MappingRule, *, samples: int = 8, groups=()) -> Impact:
    """What saving this rule would do now, as applying it does it (see the module docstring).

    `groups`: root causes the rule was started from (the item's "fix all" link), so that narrowing
    the rule away from them is reported too.
    """
    problem = mapping_target_problem(rule)
    if not rule.active:
        return Impact(problem=problem or "An inactive rule maps nothing; saving it keeps it for the history.")
    doc_ids = mapping_documents(rule)
    dry = _dry_run(rule, doc_ids)
    resolved = dry["resolved"]
    amounts = defaultdict(Decimal)
    for _pk, currency, amount in resolved.values():
        amounts[currency] += amount
    rows = []
    for item in mapping_items(rule).select_related("document", "line").order_by("id")[:samples]:
        before = (
            getattr(item.line, rule.field, "") if item.line and rule.field != "entity" else item.document.entity_code
        )
        rows.append(
            {
                "document": item.document,
                "line": item.line,
                "before": before or "(empty)",
                "after": rule.target_value,
                "item": item,
            }
        )
    return Impact(
        items=len(resolved),
        documents=len(doc_ids),
        amounts=sorted(amounts.items()),
        samples=rows,
        problem=problem,
        raised=dry["raised"],
        item_ids=set(resolved),
        left_out=_left_out(rule, set(_groups(rule)) | {int(g) for g in groups}, set(resolved)),
    )


class _DryRun(Exception):
    """Raised to roll the preview's transaction back."""


def _dry_run(rule: MappingRule, doc_ids: list[int]) -> dict:
    """Map and re-validate these documents as `mapping_run_execute` does, batch by batch with one master-data
    context, changing nothing. Returns {"resolved": {item id: (id, currency, amount)}, "raised": n}.

    The items are compared in memory, as `exception_items_reconcile` compares them, instead of being
    transitioned one by one. Expense rules read only the documents in hand; requisition and invoice rules
    also read the database (budget positions from the stored lines, across batches), so when such documents
    are affected the mapped values are written, as applying writes them, and rolled back at the end.
    """
    ctx = MasterDataContext.load()
    own = MappingIndex([rule])
    # After saving, validation maps with every active rule, this version among them.
    others = [r for r in MappingRule.objects.filter(active=True).select_related("entity") if r.pk != rule.pk]
    everything = MappingIndex([*others, rule])
    write = Document.objects.filter(pk__in=doc_ids).exclude(kind=Document.Kind.EXPENSE_REPORT).exists()

    # Expense rules judge each document on its own: in memory, larger batches answer the same, sooner.
    size = BATCH if write else 5 * BATCH

    def batches() -> dict:
        resolved: dict[int, tuple] = {}
        raised = 0
        for i in range(0, len(doc_ids), size):
            batch = doc_ids[i : i + size]
            docs = list(Document.objects.filter(pk__in=batch))
            lines = defaultdict(list)
            for ln in DocumentLine.objects.filter(document_id__in=batch).order_by("document_id", "line_no"):
                lines[ln.document_id].append(ln)
            mappings_apply(documents=docs, lines_by_doc=lines, index=own, ctx=ctx, write=write)
            mappings_apply(documents=docs, lines_by_doc=lines, index=everything, ctx=ctx, write=write)
            r, n = _revalidation_outcome(docs, lines, ctx)
            resolved.update(r)
            raised += n
        return {"resolved": resolved, "raised": raised}

    if not write:
        return batches()
    try:
        with transaction.atomic():
            raise _DryRun(batches())
    except _DryRun as done:
        return done.args[0]


def _revalidation_outcome(docs: list[Document], lines: dict, ctx: MasterDataContext) -> tuple[dict, int]:
    """What `documents_validate` would do to these documents' items: (items resolved, items raised or reopened)."""
    docs = sorted(docs, key=lambda d: d.pk)
    p2p = any(d.kind != Document.Kind.EXPENSE_REPORT for d in docs)
    if p2p:
        ctx.p2p.prepare(docs)
    codes: set[str] = set()
    wanted: set[str] = set()
    for doc in docs:
        if doc.entity_id is None and doc.entity_code in ctx.entities:
            doc.entity = ctx.entities[doc.entity_code]
        rules = rules_for(doc.kind) if doc.business_status != Document.BusinessStatus.REJECTED else {}
        codes.update(rules_for(doc.kind))
        for check in rules.values():
            wanted.update(fingerprint(f.code, doc, f.line) for f in check(doc, lines.get(doc.pk, []), ctx))
    if p2p:
        ctx.p2p.reset_batch()
    existing = {
        fp: (pk, status, currency, amount)
        for pk, fp, status, currency, amount in ExceptionItem.objects.filter(
            document_id__in=[d.pk for d in docs], code__in=codes
        ).values_list("pk", "fingerprint", "status", "currency", "amount_at_risk")
    }
    resolved = {
        pk: (pk, currency, amount)
        for fp, (pk, status, currency, amount) in existing.items()
        if fp not in wanted and status in ACTIVE_STATUSES
    }
    raised = sum(1 for fp in wanted if fp not in existing or existing[fp][1] == "resolved")
    return resolved, raised


def _left_out(rule: MappingRule, groups: set[int], resolved: set[int]) -> dict | None:
    """The open items of these root causes the rule would not resolve, with why (narrowed by source,
    entity, dates or value; or still failing after re-validation)."""
    if not groups:
        return None
    values = {
        pk: _group_value(rule, key)
        for pk, key in ExceptionGroup.objects.filter(pk__in=groups).values_list("pk", "root_cause_key")
    }
    reasons: dict[str, int] = defaultdict(int)
    amounts = defaultdict(Decimal)
    n = 0
    for pk, group_id, currency, amount, source, entity_id, entity_code, day in ExceptionItem.objects.filter(
        group_id__in=groups, status__in=ACTIVE_STATUSES
    ).values_list(
        "pk",
        "group_id",
        "currency",
        "amount_at_risk",
        "document__source_system",
        "document__entity_id",
        "document__entity_code",
        "line__date",
    ):
        if pk in resolved:
            continue
        n += 1
        amounts[currency] += amount
        reasons[_why_left(rule, values.get(group_id, ""), source, entity_id, entity_code, day)] += 1
    if not n:
        return None
    return {
        "items": n,
        "amounts": sorted(amounts.items()),
        "reasons": sorted(reasons.items(), key=lambda r: (-r[1], r[0])),
        "groups": len(groups),
    }


def _why_left(rule: MappingRule, value: str, source: str, entity_id, entity_code: str, day) -> str:
    if not rule.matches(value):
        return f"value {value or '(none)'} not covered"
    if rule.entity_id and rule.field != "entity" and entity_id != rule.entity_id:
        return f"documents of {entity_code or '(no entity)'}"
    if rule.source_system and source != rule.source_system:
        return f"documents from {source}"
    if day and rule.effective_from and day < rule.effective_from:
        return f"lines dated before {rule.effective_from:%Y-%m-%d}"
    if day and rule.effective_to and day > rule.effective_to:
        return f"lines dated after {rule.effective_to:%Y-%m-%d}"
    return "still failing after re-validation"


def mapping_group_summary(group_id) -> dict | None:
    """A root cause as the mapping screen shows it when a rule is started from it: its open items, money
    per currency and the systems its documents come from."""
    group = ExceptionGroup.objects.filter(pk=group_id).first() if str(group_id or "").isdigit() else None
    if group is None:
        return None
    items = ExceptionItem.objects.filter(group=group, status__in=ACTIVE_STATUSES)
    return {
        "group": group,
        "items": items.count(),
        "amounts": sorted(
            items.values_list("currency").annotate(total=Sum("amount_at_risk")).values_list("currency", "total")
        ),
        "sources": sorted(set(items.values_list("document__source_system", flat=True)) - {None}),
    }


def _snapshot(rule: MappingRule) -> dict:
    data = model_to_dict(
        rule,
        fields=[
            "source_system",
            "entity",
            "field",
            "source_value",
            "pattern",
            "target_value",
            "effective_from",
            "effective_to",
            "active",
            "note",
        ],
    )
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}


@transaction.atomic
def mapping_rule_save(*, rule: MappingRule, actor, reason: str = "") -> MappingRun | None:
    """Save a new version of the rule and queue its application. Raises InvalidCorrection when invalid."""
    rule.full_clean(exclude=["created_by", "updated_by"])
    problem = mapping_target_problem(rule)
    if problem and rule.active:
        raise InvalidCorrection(problem)
    created = rule.pk is None
    if created:
        rule.created_by = actor
        rule.version = 1
    else:
        rule.version = MappingRule.objects.filter(pk=rule.pk).values_list("version", flat=True).get() + 1
    rule.updated_by = actor
    rule.save()
    MappingRuleVersion.objects.create(
        rule=rule,
        version=rule.version,
        snapshot=_snapshot(rule),
        changed_by=actor,
        action="created" if created else ("changed" if rule.active else "deactivated"),
        reason=reason[:300],
    )
    if not rule.active:
        return None
    run = MappingRun.objects.create(rule=rule, version=rule.version)
    jobs.enqueue_on_commit(jobs.MAPPING_RUN, run_id=run.pk)
    return run


def _map_line(rule: MappingRule, doc: Document, line: DocumentLine | None, now, changes: _Changes, actor=None):
    """Apply the rule to one line (or the document's entity) in memory; the writes are collected in `changes`."""
    if rule.field == "entity":
        entity = LegalEntity.objects.filter(code=rule.target_value).first()
        if entity is None or doc.entity_code == rule.target_value:
            return
        old = doc.entity_code
        changes.entities[doc.pk] = entity
        doc.entity, doc.entity_code = entity, entity.code
        what = f"Legal entity {old or '(none)'} → {entity.code}"
    else:
        old = getattr(line, rule.field)
        if old == rule.target_value:
            return
        setattr(line, rule.field, rule.target_value)
        changes.lines[(rule.field, rule.target_value)].append(line.pk)
        what = f"Line {line.line_no}: {rule.get_field_display().lower()} {old or '(empty)'} → {rule.target_value}"
    if doc.pk not in changes.revised:
        changes.revised.add(doc.pk)
        doc.revision += 1  # a new revision: the posting gets a new idempotency key
    changes.mapped += 1
    if not changes.keep_events:
        return
    changes.events.append(
        DocumentEvent(
            document=doc,
            at=now,
            system="workbench",
            action="mapped",
            actor=actor,
            message=f"{what} (mapping rule #{rule.pk} v{rule.version})",
            correlation_id=doc.correlation_id,
            data={"rule": rule.pk, "version": rule.version},
        )
    )


@dataclass
class _Changes:
    lines: dict = field(default_factory=lambda: defaultdict(list))  # (field, value) -> line ids
    revised: set = field(default_factory=set)
    events: list = field(default_factory=list)
    entities: dict = field(default_factory=dict)  # document id -> its mapped legal entity
    mapped: int = 0
    keep_events: bool = True  # False: mapped in memory only, nothing to write

    def write(self) -> int:
        """Three statements for a whole batch, however many lines it maps."""
        for (field_name, value), ids in self.lines.items():
            DocumentLine.objects.filter(pk__in=ids).update(**{field_name: value})
        for doc_id, entity in self.entities.items():
            Document.objects.filter(pk=doc_id).update(entity=entity, entity_code=entity.code)
        if self.revised:
            Document.objects.filter(pk__in=self.revised).update(revision=F("revision") + 1, updated_at=timezone.now())
        DocumentEvent.objects.bulk_create(self.events)
        return len(self.events)


def mappings_apply(
    *,
    documents: list[Document],
    lines_by_doc: dict[int, list[DocumentLine]],
    index: MappingIndex,
    ctx=None,
    write: bool = True,
) -> int:
    """Map every document's values that a rule covers, before the rules judge them (arrivals and re-validation).

    The documents and lines passed in are changed in memory; `write=False` leaves the database as it is
    (the preview of a rule, when nothing it runs reads the mapped values back from the database)."""
    if not index:
        return 0
    now = timezone.now()
    changes = _Changes(keep_events=write)
    for doc in documents:
        if doc.financial_status not in (Document.FinancialStatus.NOT_POSTED, Document.FinancialStatus.REJECTED):
            continue
        if doc.entity_id is None:
            rule = index.find("entity", doc.entity_code, doc, None)
            if rule is not None:
                _map_line(rule, doc, None, now, changes)
        for ln in lines_by_doc.get(doc.pk, []):
            for field_name in ("cost_center", "tax_code", "gl_account"):
                value = getattr(ln, field_name)
                if not value and field_name != "cost_center":
                    continue
                known = (
                    ctx is not None
                    and doc.entity_id
                    and value
                    in (
                        ctx.cost_centers.get(doc.entity_id, set())
                        if field_name == "cost_center"
                        else ctx.tax_codes.get(doc.entity_id, set())
                        if field_name == "tax_code"
                        else set()
                    )
                )
                if known:
                    continue  # a valid value is never mapped away
                rule = index.find(field_name, value, doc, ln.date)
                if rule is not None:
                    _map_line(rule, doc, ln, now, changes)
    return changes.write() if write else changes.mapped
