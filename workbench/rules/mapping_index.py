"""The admins' active mapping rules, indexed for the rules' context (a value a source spells its own
way -> the ERP's value). Loaded once per validation batch."""

from __future__ import annotations

from collections import defaultdict

from workbench.models import Document
from workbench.models.mappings import MappingRule


class MappingIndex:
    """Active rules, looked up per (field, value) in O(1); patterns tried after exact values."""

    def __init__(self, rules=None):
        rules = list(MappingRule.objects.filter(active=True).select_related("entity")) if rules is None else rules
        self.exact: dict[tuple[str, str], list[MappingRule]] = defaultdict(list)
        self.patterns: dict[str, list[MappingRule]] = defaultdict(list)
        for r in rules:
            (self.exact[(r.field, r.source_value)] if r.source_value else self.patterns[r.field]).append(r)

    def __bool__(self) -> bool:
        return bool(self.exact or self.patterns)

    def find(self, field_name: str, value: str, doc: Document, day) -> MappingRule | None:
        for r in self.exact.get((field_name, value), []) + [
            p for p in self.patterns.get(field_name, []) if p.matches(value)
        ]:
            if (
                (not r.source_system or r.source_system == doc.source_system)
                and (r.entity_id is None or r.entity_id == doc.entity_id or (field_name == "entity"))
                and r.in_effect(day)
            ):
                return r
        return None
