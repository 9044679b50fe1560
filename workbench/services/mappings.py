"""Mapping rules: test a rule's impact, save it (versioned), apply it to what it fixes, map new documents.

- `mapping_impact(rule)`: what an unsaved (or saved) rule would resolve now: open items, documents,
  money per currency, and sample lines (before -> after). Answered from the exception groups (one
  group per unmapped value), so it stays fast with 100,000 open items.
- `mapping_rule_save(...)`: validates the target against the ERP's master data, saves a new version
  with its author and reason, and queues `MappingRun` for a worker.
- `mapping_run_execute(run)`: maps the affected lines, re-validates their documents (items resolved
  name the rule as their cause) and queues the clean ones for posting, reporting progress.
- `mappings_apply(...)`: called by validation for every document, so later arrivals are mapped too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, F, Q, Sum
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
    LegalEntity,
    TaxCode,
)
from workbench.models.exceptions import ACTIVE_STATUSES
from workbench.models.mappings import MappingRule, MappingRuleVersion, MappingRun
from workbench.rules.mapping_index import MappingIndex

# The exception codes a mapping of each field can resolve (their groups are keyed by the unmapped value).
FIELD_CODES = {"cost_center": ["UNKNOWN_COST_CENTER"], "tax_code": ["INVALID_TAX_CODE"], "entity": ["UNKNOWN_ENTITY"],
               "gl_account": []}
BATCH = 200


def mapping_target_problem(rule: MappingRule) -> str:
    """Why the rule's target is not a valid ERP value, or ""."""
    target = rule.target_value.strip()
    if not target:
        return "Choose the ERP value the source value stands for."
    if rule.field == "entity":
        return "" if LegalEntity.objects.filter(code=target).exists() else f"'{target}' is not a legal entity in the ERP."
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


def _groups(rule: MappingRule) -> list[int]:
    """The exception groups of the values this rule maps (group keys are code:entity:value)."""
    out = []
    for code in FIELD_CODES.get(rule.field, []):
        prefix = f"{code}:{rule.entity.code}:" if rule.entity_id else f"{code}:"
        if rule.source_value and rule.entity_id:
            keys = ExceptionGroup.objects.filter(root_cause_key=prefix + rule.source_value).values_list("pk", "root_cause_key")
        else:
            keys = ExceptionGroup.objects.filter(root_cause_key__startswith=prefix).values_list("pk", "root_cause_key")
        for pk, key in keys:
            value = key.split(":", 2)[2] if key.count(":") >= 2 else ""
            if rule.matches(value if rule.field != "entity" else (value if value != "(none)" else "")):
                out.append(pk)
    return out


def mapping_items(rule: MappingRule):
    qs = ExceptionItem.objects.filter(group_id__in=_groups(rule), status__in=ACTIVE_STATUSES)
    if rule.source_system:
        qs = qs.filter(document__source_system=rule.source_system)
    if rule.effective_from:
        qs = qs.filter(Q(line__date__gte=rule.effective_from) | Q(line__date__isnull=True))
    if rule.effective_to:
        qs = qs.filter(Q(line__date__lte=rule.effective_to) | Q(line__date__isnull=True))
    return qs


@dataclass
class Impact:
    items: int = 0
    documents: int = 0
    amounts: list[tuple[str, Decimal]] = field(default_factory=list)  # (currency, amount at risk)
    samples: list[dict] = field(default_factory=list)  # a few lines: document, line, before, after
    problem: str = ""


def mapping_impact(rule: MappingRule, *, samples: int = 8) -> Impact:
    problem = mapping_target_problem(rule)
    items = mapping_items(rule)
    agg = items.aggregate(n=Count("id"), docs=Count("document_id", distinct=True))
    amounts = sorted(items.values_list("currency").annotate(total=Sum("amount_at_risk")).values_list("currency", "total"))
    rows = []
    for item in items.select_related("document", "line").order_by("id")[:samples]:
        before = getattr(item.line, rule.field, "") if item.line and rule.field != "entity" else item.document.entity_code
        rows.append({"document": item.document, "line": item.line, "before": before or "(empty)", "after": rule.target_value,
                     "item": item})
    return Impact(items=agg["n"], documents=agg["docs"], amounts=amounts, samples=rows, problem=problem)


def _snapshot(rule: MappingRule) -> dict:
    data = model_to_dict(rule, fields=["source_system", "entity", "field", "source_value", "pattern", "target_value",
                                       "effective_from", "effective_to", "active", "note"])
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
    MappingRuleVersion.objects.create(rule=rule, version=rule.version, snapshot=_snapshot(rule), changed_by=actor,
                                      action="created" if created else ("changed" if rule.active else "deactivated"),
                                      reason=reason[:300])
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
        Document.objects.filter(pk=doc.pk).update(entity=entity, entity_code=entity.code)
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
    changes.events.append(DocumentEvent(document=doc, at=now, system="workbench", action="mapped", actor=actor,
                                        message=f"{what} (mapping rule #{rule.pk} v{rule.version})",
                                        correlation_id=doc.correlation_id, data={"rule": rule.pk, "version": rule.version}))


@dataclass
class _Changes:
    lines: dict = field(default_factory=lambda: defaultdict(list))  # (field, value) -> line ids
    revised: set = field(default_factory=set)
    events: list = field(default_factory=list)

    def write(self) -> int:
        """Three statements for a whole batch, however many lines it maps."""
        for (field_name, value), ids in self.lines.items():
            DocumentLine.objects.filter(pk__in=ids).update(**{field_name: value})
        if self.revised:
            Document.objects.filter(pk__in=self.revised).update(revision=F("revision") + 1, updated_at=timezone.now())
        DocumentEvent.objects.bulk_create(self.events)
        return len(self.events)


def mappings_apply(*, documents: list[Document], lines_by_doc: dict[int, list[DocumentLine]], index: MappingIndex,
                   ctx=None) -> int:
    """Map every document's values that a rule covers, before the rules judge them (arrivals and re-validation)."""
    if not index:
        return 0
    now = timezone.now()
    changes = _Changes()
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
                known = ctx is not None and doc.entity_id and value in (
                    ctx.cost_centers.get(doc.entity_id, set()) if field_name == "cost_center"
                    else ctx.tax_codes.get(doc.entity_id, set()) if field_name == "tax_code" else set())
                if known:
                    continue  # a valid value is never mapped away
                rule = index.find(field_name, value, doc, ln.date)
                if rule is not None:
                    _map_line(rule, doc, ln, now, changes)
    return changes.write()
