"""Master data loaded once per batch, so that validating 1,000 lines costs a handful of queries."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from workbench.models import AccountingPeriod, CostCenter, Employee, GLAccount, LegalEntity, TaxCode
from workbench.rules.mapping_index import MappingIndex
from workbench.rules.p2p_context import P2PContext


@dataclass
class MasterDataContext:
    entities: dict[str, LegalEntity] = field(default_factory=dict)  # code -> entity
    cost_centers: dict[int, set[str]] = field(default_factory=dict)  # entity id -> active codes
    blocked_cost_centers: dict[int, set[str]] = field(default_factory=dict)  # known to the ERP but refused by it
    tax_codes: dict[int, set[str]] = field(default_factory=dict)
    # entity id -> {account code: why the ERP refuses lines on it, "" if it takes them}
    gl_accounts: dict[int, dict[str, str]] = field(default_factory=dict)
    employees: dict[tuple[int, str], Employee] = field(default_factory=dict)
    periods: dict[int, list[AccountingPeriod]] = field(default_factory=dict)  # sorted by start
    _starts: dict[int, list] = field(default_factory=dict)
    _p2p: object = None
    _mappings: object = None

    @property
    def mappings(self):
        """The admins' active mapping rules, indexed (loaded on first use)."""
        if self._mappings is None:
            self._mappings = MappingIndex()
        return self._mappings

    @property
    def p2p(self):
        """Procure-to-pay lookups, loaded on first use (expense-only batches never pay for them)."""
        if self._p2p is None:
            self._p2p = P2PContext()
        return self._p2p

    @classmethod
    def load(cls) -> MasterDataContext:
        ctx = cls()
        ctx.entities = {e.code: e for e in LegalEntity.objects.all()}
        for entity_id, code, active in CostCenter.objects.values_list("entity_id", "code", "active"):
            (ctx.cost_centers if active else ctx.blocked_cost_centers).setdefault(entity_id, set()).add(code)
        for entity_id, code in TaxCode.objects.values_list("entity_id", "code"):
            ctx.tax_codes.setdefault(entity_id, set()).add(code)
        for account in GLAccount.objects.only("entity_id", "code", "blocked", "account_type", "direct_posting"):
            ctx.gl_accounts.setdefault(account.entity_id, {})[account.code] = account.refusal
        for emp in Employee.objects.only("id", "entity_id", "code", "name", "status"):
            ctx.employees[(emp.entity_id, emp.code)] = emp
        for p in AccountingPeriod.objects.order_by("start"):
            ctx.periods.setdefault(p.entity_id, []).append(p)
        ctx._starts = {k: [p.start for p in v] for k, v in ctx.periods.items()}
        return ctx

    def period_for(self, entity_id: int, day) -> AccountingPeriod | None:
        starts = self._starts.get(entity_id, [])
        i = bisect.bisect_right(starts, day) - 1
        if i < 0:
            return None
        period = self.periods[entity_id][i]
        return period if period.start <= day <= period.end else None

    def open_periods(self, entity_id: int) -> list[AccountingPeriod]:
        return [p for p in self.periods.get(entity_id, []) if not p.closed]
