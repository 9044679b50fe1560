"""Entity calendars as `business_time.Calendar`s, close deadlines, and the close-risk window.

`Calendars` loads every calendar (two queries) and every open period (one) the first time a batch
asks, so that ingest paths raising thousands of items never query per item.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Case, IntegerField, Max, OuterRef, Q, Subquery, Value, When
from django.utils import timezone

from workbench import business_time as bt
from workbench.models import AccountingPeriod, Document, DocumentLine
from workbench.models.calendars import BusinessCalendar, CalendarDay, CloseTimetable

DEADLINES = ("expense_cutoff", "ap_cutoff", "close")
DEADLINE_LABELS = {"expense_cutoff": "Expense cut-off", "ap_cutoff": "AP cut-off", "close": "ERP period close"}


def deadline_for_kind(kind: str) -> str:
    """Which of the period's dates a document of this kind must make."""
    if kind == Document.Kind.EXPENSE_REPORT:
        return "expense_cutoff"
    if kind == Document.Kind.SUPPLIER_INVOICE:
        return "ap_cutoff"
    return "close"


def default_calendar() -> bt.Calendar:
    d = settings.BUSINESS_CALENDAR_DEFAULT
    return bt.Calendar(
        time_zone=d.get("time_zone", "UTC"),
        weekdays=frozenset(d.get("weekdays", range(5))),
        start=time.fromisoformat(d.get("start", "09:00")),
        end=time.fromisoformat(d.get("end", "17:00")),
        country=d.get("country", ""),
        subdivision=d.get("subdivision", ""),
    )


def default_offsets() -> dict[str, int]:
    return {f"{k}_days": int(settings.CLOSE_OFFSETS_DEFAULT[f"{k}_days"]) for k in DEADLINES}


def calendar_from(row: BusinessCalendar | None, days: list[CalendarDay]) -> bt.Calendar:
    base = default_calendar() if row is None else None
    try:
        return bt.Calendar(
            time_zone=row.time_zone if row else base.time_zone,
            weekdays=frozenset(row.weekdays) if row else base.weekdays,
            start=row.work_start if row else base.start,
            end=row.work_end if row else base.end,
            country=row.country if row else base.country,
            subdivision=row.subdivision if row else base.subdivision,
            extra_holidays={d.day: d.name for d in days if not d.working},
            extra_working_days={d.day: d.name for d in days if d.working},
        )
    except bt.CalendarError:
        # A row the forms would not have let through (edited in the database): SLAs still run.
        return default_calendar()


def offsets_from(row: BusinessCalendar | None) -> dict[str, int]:
    return {f"{k}_days": getattr(row, f"{k}_days") for k in DEADLINES} if row else default_offsets()


@dataclass
class OpenPeriod:
    period: AccountingPeriod
    dates: dict[str, datetime]  # deadline name -> instant


def period_dates(cal: bt.Calendar, offsets: dict[str, int], end: date) -> dict[str, datetime]:
    return {k: bt.day_end(cal, bt.add_business_days(cal, end, offsets[f"{k}_days"])) for k in DEADLINES}


def effective_offsets(entity_offsets: dict[str, int], timetable: CloseTimetable | None) -> dict[str, int]:
    out = dict(entity_offsets)
    for k in DEADLINES:
        v = getattr(timetable, f"{k}_days", None) if timetable else None
        if v is not None:
            out[f"{k}_days"] = v
    return out


class Calendars:
    """Every entity's calendar and open periods, each loaded once per batch."""

    def __init__(self):
        self._rows: dict[int, BusinessCalendar] | None = None
        self._days: dict[int, list[CalendarDay]] = {}
        self._cals: dict[int | None, bt.Calendar] = {}
        self._periods: dict[int, list[OpenPeriod]] | None = None
        self._sla: dict[tuple, datetime] = {}

    def _load(self):
        # One query while no entity has a calendar of its own (the queue asks on every page); added
        # days always belong to a calendar row (calendar_day_add creates it).
        if self._rows is None:
            self._rows = {r.entity_id: r for r in BusinessCalendar.objects.all()}
            if self._rows:
                for d in CalendarDay.objects.filter(entity_id__in=list(self._rows)):
                    self._days.setdefault(d.entity_id, []).append(d)

    def entity_ids(self) -> list[int]:
        """The entities with a calendar of their own (the others use the default)."""
        self._load()
        return sorted(self._rows)

    def row(self, entity_id: int | None) -> BusinessCalendar | None:
        self._load()
        return self._rows.get(entity_id)

    def get(self, entity_id: int | None) -> bt.Calendar:
        if entity_id not in self._cals:
            self._load()
            self._cals[entity_id] = calendar_from(self._rows.get(entity_id), self._days.get(entity_id, []))
        return self._cals[entity_id]

    def offsets(self, entity_id: int | None) -> dict[str, int]:
        return offsets_from(self.row(entity_id))

    def sla_due(self, entity_id: int | None, hours: float, now: datetime) -> datetime:
        """`hours` business hours from `now` in the entity's calendar (memoized: a batch shares `now`)."""
        key = (entity_id, hours, now)
        if key not in self._sla:
            self._sla[key] = bt.add_business_hours(self.get(entity_id), now, hours)
        return self._sla[key]

    def open_periods(self, entity_id: int) -> list[OpenPeriod]:
        if self._periods is None:
            self._periods = {}
            for p in AccountingPeriod.objects.filter(closed=False).select_related("timetable").order_by("start"):
                tt = getattr(p, "timetable", None)
                if tt is not None:
                    dates = {k: getattr(tt, f"{k}_at") for k in DEADLINES}
                else:  # not seeded yet (a period made outside the sync): worked out the same way
                    dates = period_dates(self.get(p.entity_id), self.offsets(p.entity_id), p.end)
                self._periods.setdefault(p.entity_id, []).append(OpenPeriod(p, dates))
        return self._periods.get(entity_id, [])

    def close_due(self, entity_id: int | None, kind: str, day: date | None) -> datetime | None:
        """The deadline of the first open period a document dated `day` can post into."""
        if entity_id is None or day is None:
            return None
        periods = self.open_periods(entity_id)
        i = bisect.bisect_left([p.period.end for p in periods], day)
        return periods[i].dates[deadline_for_kind(kind)] if i < len(periods) else None

    def risk_cutoff(self, entity_id: int | None, now: datetime) -> datetime:
        cal = self.get(entity_id)
        return bt.add_business_hours(cal, now, settings.CLOSE_RISK_DAYS * bt.day_hours(cal))


def document_close_days(doc_ids) -> dict[int, tuple[int | None, str, date]]:
    """{document id: (entity id, kind, the day it posts on)}: the ERP's posting date once it has one;
    an expense report posts on its last line's date, an invoice on its invoice date (postings.py)."""
    last_line = (
        DocumentLine.objects.filter(document=OuterRef("pk")).order_by().values("document").annotate(m=Max("date"))
    )
    rows = (
        Document.objects.filter(pk__in=doc_ids)
        .order_by()
        .annotate(last_line=Subquery(last_line.values("m")[:1]))
        .values_list("pk", "entity_id", "kind", "erp_posting_date", "last_line", "document_date", "created_at")
    )
    today = timezone.localdate()
    out = {}
    for pk, entity_id, kind, posted, last_line_day, doc_day, created in rows:
        day = posted or (last_line_day if kind == Document.Kind.EXPENSE_REPORT else None) or doc_day
        out[pk] = (entity_id, kind, day or (timezone.localdate(created) if created else today))
    return out


def document_close_due(doc_id: int, cals: Calendars | None = None) -> datetime | None:
    """One document's close deadline (an item raised on its own: ERP refusals, dead writes)."""
    found = document_close_days([doc_id]).get(doc_id)
    return (cals or Calendars()).close_due(*found) if found else None


def close_risk_cutoffs(now: datetime | None = None, cals: Calendars | None = None) -> tuple[datetime, dict]:
    """The latest close deadline that counts as at risk: by default, and per entity with a calendar."""
    now = now or timezone.now()
    cals = cals or Calendars()
    cals._load()
    return cals.risk_cutoff(None, now), {e: cals.risk_cutoff(e, now) for e in cals._rows}


def countdown(due: datetime | None, now: datetime | None = None) -> str:
    """ "2 d 4 h" (wall clock: how long people have), "45 min", or "passed"."""
    if due is None:
        return ""
    left = due - (now or timezone.now())
    if left <= timedelta(0):
        return "passed"
    days, secs = left.days, left.seconds
    if days:
        return f"{days} d {secs // 3600} h"
    if secs >= 3600:
        return f"{secs // 3600} h {secs % 3600 // 60} min"
    return f"{max(1, secs // 60)} min"


def close_risk_q(now: datetime | None = None) -> Q:
    """Items whose close deadline falls inside their entity's close-risk window (passed ones too:
    later still). A few entities with calendars make a few OR terms on one indexed column."""
    default, per_entity = close_risk_cutoffs(now)
    q = Q(close_due_at__lte=default)
    if per_entity:
        q &= ~Q(entity_id__in=list(per_entity))
    for entity_id, cutoff in per_entity.items():
        q |= Q(entity_id=entity_id, close_due_at__lte=cutoff)
    return q


def close_risk_rank(now: datetime | None = None) -> Case:
    """0 for an item at close risk, else 1: ordered first, it lifts those items."""
    return Case(When(close_risk_q(now), then=Value(0)), default=Value(1), output_field=IntegerField())


@dataclass
class PeriodDates:
    period: AccountingPeriod
    dates: dict[str, datetime]
    overrides: dict[str, int | None]

    def rows(self, now: datetime | None = None) -> list[dict]:
        now = now or timezone.now()
        return [
            {
                "key": k,
                "label": DEADLINE_LABELS[k],
                "at": self.dates[k],
                "countdown": countdown(self.dates[k], now),
                "override": self.overrides.get(k),
            }
            for k in DEADLINES
        ]


def period_dates_list(entity_id: int, periods, cals: Calendars) -> list[PeriodDates]:
    """Each period with its three dates (stored, or worked out when not seeded yet)."""
    out = []
    for p in periods:
        tt = getattr(p, "timetable", None)
        if tt is not None:
            dates = {k: getattr(tt, f"{k}_at") for k in DEADLINES}
        else:
            dates = period_dates(cals.get(entity_id), effective_offsets(cals.offsets(entity_id), None), p.end)
        out.append(PeriodDates(p, dates, {k: getattr(tt, f"{k}_days", None) if tt else None for k in DEADLINES}))
    return out


def close_overview(entities, now: datetime | None = None) -> list[dict]:
    """Per entity: its calendar, and its current and next period with each close date."""
    now = now or timezone.now()
    cals = Calendars()
    entities = list(entities)
    by_entity: dict[int, list] = {}
    for p in AccountingPeriod.objects.filter(entity__in=entities).select_related("timetable").order_by("start"):
        by_entity.setdefault(p.entity_id, []).append(p)
    out = []
    for e in entities:
        today = bt.local_date(cals.get(e.pk), now)
        periods = by_entity.get(e.pk, [])
        current = next((p for p in periods if p.start <= today <= p.end), None)
        upcoming = next((p for p in periods if p.start > today), None)
        shown = period_dates_list(e.pk, [p for p in (current, upcoming) if p], cals)
        out.append(
            {
                "entity": e,
                "calendar": cals.get(e.pk),
                "own": cals.row(e.pk) is not None,
                "offsets": cals.offsets(e.pk),
                "today": today,
                "current": shown[0] if current else None,
                "next": shown[-1] if upcoming else None,
            }
        )
    return out


class CloseRiskFirst:
    """The default queue order, paged in two parts: the items at close risk (few, found through the
    close_due_at index), then the rest in the order the active-SLA index already gives. Sorting every
    active item by a CASE instead cost a full sort per page (bench/queue_page.py)."""

    ordered = True  # for Paginator

    def __init__(self, qs, now: datetime | None = None):
        q = close_risk_q(now)
        order = [o for o in qs.query.order_by if o != "close_risk"]
        self.risk, self.rest = qs.filter(q).order_by(*order), qs.exclude(q).order_by(*order)
        self._n_risk: int | None = None

    def n_risk(self) -> int:
        if self._n_risk is None:
            self._n_risk = self.risk.count()
        return self._n_risk

    def count(self) -> int:
        return self.n_risk() + self.rest.count()

    def __getitem__(self, k):
        if isinstance(k, int):
            return self[k : k + 1][0]
        start, stop, n = k.start or 0, k.stop, self.n_risk()
        rows = list(self.risk[start : min(stop, n)]) if start < n else []
        if stop > n:
            rows += list(self.rest[max(0, start - n) : stop - n])
        return rows
