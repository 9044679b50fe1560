"""Calendar and close-timetable writes (admins), and keeping items' close deadlines in step.

Each change is recorded in the audit trail (services/audit.py CONFIG), recomputes the entity's
timetable and then its active items' `close_due_at` in a few set-based UPDATEs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, time

from django.db import transaction

from workbench import business_time as bt
from workbench.errors import InvalidCalendar
from workbench.models import AccountingPeriod, ExceptionItem, LegalEntity
from workbench.models.calendars import OFFSET_LIMIT, BusinessCalendar, CalendarDay, CloseTimetable
from workbench.models.exceptions import ACTIVE_STATUSES
from workbench.selectors.calendars import (
    DEADLINES,
    Calendars,
    default_calendar,
    default_offsets,
    document_close_days,
    effective_offsets,
    period_dates,
)

UPDATE_CHUNK = 5000


def exception_items_close_due_set(*, item_ids: Iterable[int] | None = None, entity_ids=None, cals=None) -> int:
    """Set `close_due_at` of these items (or of the entities' active items) from their documents.

    One query reads the documents' posting days; items are then updated grouped by deadline (a
    few UPDATEs: most items of a batch post into one period), never one query per item.
    """
    qs = ExceptionItem.objects.filter(document__isnull=False)
    if item_ids is not None:
        qs = qs.filter(pk__in=list(item_ids))
    else:
        qs = qs.filter(status__in=ACTIVE_STATUSES)
        if entity_ids is not None:
            qs = qs.filter(entity_id__in=list(entity_ids))
    pairs = list(qs.values_list("pk", "document_id", "close_due_at"))
    if not pairs:
        return 0
    cals = cals or Calendars()
    days = document_close_days({d for _, d, _ in pairs})
    groups: dict = defaultdict(list)
    for pk, doc_id, current in pairs:
        entity_id, kind, day = days[doc_id]
        due = cals.close_due(entity_id, kind, day)
        if due != current:
            groups[due].append(pk)
    for due, pks in groups.items():
        for i in range(0, len(pks), UPDATE_CHUNK):
            ExceptionItem.objects.filter(pk__in=pks[i : i + UPDATE_CHUNK]).update(close_due_at=due)
    return sum(len(p) for p in groups.values())


def close_timetables_seed(*, entity_ids=None) -> int:
    """Every period of these entities (all when None) gets its three dates from its calendar and
    offsets; then the entities' active items follow. Runs after the ERP's periods sync."""
    cals = Calendars()
    periods = AccountingPeriod.objects.select_related("timetable").order_by("entity_id", "start")
    if entity_ids is not None:
        periods = periods.filter(entity_id__in=list(entity_ids))
    rows = []
    for p in periods:
        tt = getattr(p, "timetable", None)
        offsets = effective_offsets(cals.offsets(p.entity_id), tt)
        dates = period_dates(cals.get(p.entity_id), offsets, p.end)
        rows.append(
            CloseTimetable(
                period=p,
                entity_id=p.entity_id,
                expense_cutoff_days=tt.expense_cutoff_days if tt else None,
                ap_cutoff_days=tt.ap_cutoff_days if tt else None,
                close_days=tt.close_days if tt else None,
                updated_by=tt.updated_by if tt else None,
                **{f"{k}_at": v for k, v in dates.items()},
            )
        )
    CloseTimetable.objects.bulk_create(
        rows,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["period"],
        update_fields=["entity", "expense_cutoff_at", "ap_cutoff_at", "close_at", "updated_at"],
    )
    exception_items_close_due_set(entity_ids=entity_ids)
    return len(rows)


def _offset(value, label: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        raise InvalidCalendar(f"{label}: {str(value)[:20]!r} is not a whole number of business days.") from None
    if abs(n) > OFFSET_LIMIT:
        raise InvalidCalendar(f"{label}: at most {OFFSET_LIMIT} business days either side of period end.")
    return n


@transaction.atomic(durable=True)
def business_calendar_save(
    *,
    entity: LegalEntity,
    actor,
    time_zone: str,
    weekdays: list[int],
    work_start: time,
    work_end: time,
    country: str = "",
    subdivision: str = "",
    expense_cutoff_days=None,
    ap_cutoff_days=None,
    close_days=None,
) -> BusinessCalendar:
    """Save an entity's calendar and default offsets; its timetable and items' deadlines follow."""
    country, subdivision = (country or "").strip().upper(), (subdivision or "").strip().upper()
    try:
        bt.Calendar(
            time_zone=time_zone,
            weekdays=frozenset(weekdays),
            start=work_start,
            end=work_end,
            country=country,
            subdivision=subdivision,
        )
    except bt.CalendarError as exc:
        raise InvalidCalendar(str(exc)) from None
    defaults = default_offsets()
    offsets = {}
    for k, label in (("expense_cutoff", "Expense cut-off"), ("ap_cutoff", "AP cut-off"), ("close", "ERP close")):
        v = _offset({"expense_cutoff": expense_cutoff_days, "ap_cutoff": ap_cutoff_days, "close": close_days}[k], label)
        offsets[f"{k}_days"] = defaults[f"{k}_days"] if v is None else v
    cal, _ = BusinessCalendar.objects.select_for_update().get_or_create(entity=entity, defaults={"weekdays": []})
    cal.time_zone, cal.weekdays, cal.work_start, cal.work_end = time_zone, sorted(set(weekdays)), work_start, work_end
    cal.country, cal.subdivision, cal.updated_by = country, subdivision, actor
    for k, v in offsets.items():
        setattr(cal, k, v)
    cal.save()
    close_timetables_seed(entity_ids=[entity.pk])
    return cal


@transaction.atomic(durable=True)
def calendar_day_add(*, entity: LegalEntity, day: date, working: bool, name: str, actor) -> CalendarDay:
    name = (name or "").replace("\x00", "").strip()
    if not name:
        raise InvalidCalendar("Give the day a name (e.g. Company day, Inventory count).")
    if len(name) > 100:
        raise InvalidCalendar("A day's name has at most 100 characters.")
    if not date(1970, 1, 1) <= day <= date(2200, 12, 31):
        raise InvalidCalendar("Pick a day between 1970 and 2200.")
    _calendar_row(entity, actor)  # an added day belongs to the entity's own calendar (a copy of the default)
    row, _ = CalendarDay.objects.update_or_create(
        entity=entity, day=day, defaults={"working": working, "name": name, "created_by": actor}
    )
    close_timetables_seed(entity_ids=[entity.pk])
    return row


def _calendar_row(entity: LegalEntity, actor) -> BusinessCalendar:
    base = default_calendar()
    row, _ = BusinessCalendar.objects.get_or_create(
        entity=entity,
        defaults={
            "time_zone": base.time_zone,
            "weekdays": sorted(base.weekdays),
            "work_start": base.start,
            "work_end": base.end,
            "country": base.country,
            "subdivision": base.subdivision,
            "updated_by": actor,
            **default_offsets(),
        },
    )
    return row


@transaction.atomic(durable=True)
def calendar_day_remove(*, day: CalendarDay, actor) -> None:
    entity_id = day.entity_id
    day.delete()
    close_timetables_seed(entity_ids=[entity_id])


@transaction.atomic(durable=True)
def close_timetable_set(
    *, period: AccountingPeriod, actor, expense_cutoff_days=None, ap_cutoff_days=None, close_days=None
) -> CloseTimetable:
    """Per-period overrides of the offsets (empty: the entity's default); items' deadlines follow."""
    values = {
        "expense_cutoff_days": _offset(expense_cutoff_days, "Expense cut-off"),
        "ap_cutoff_days": _offset(ap_cutoff_days, "AP cut-off"),
        "close_days": _offset(close_days, "ERP close"),
    }
    cals = Calendars()
    tt = CloseTimetable.objects.select_for_update().filter(period=period).first() or CloseTimetable(
        period=period, entity_id=period.entity_id
    )
    for k, v in values.items():
        setattr(tt, k, v)
    dates = period_dates(cals.get(period.entity_id), effective_offsets(cals.offsets(period.entity_id), tt), period.end)
    for k in DEADLINES:
        setattr(tt, f"{k}_at", dates[k])
    tt.updated_by = actor
    tt.save()
    exception_items_close_due_set(entity_ids=[period.entity_id])
    return tt
