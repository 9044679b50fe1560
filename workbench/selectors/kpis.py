"""KPIs a controller reports upward: one read for the dashboard and `/api/kpis/`, so both show the same numbers.

Every number is aggregated in the database (grouped by week, or one conditional aggregate per week),
never by walking rows in Python. Weeks start on Monday 00:00 in the site's time zone; the window is
the current week (up to now) and the eleven before it. Amounts are summed per entity *and* currency:
currencies are never added together.

Business-day ages count each entity's business calendar (working days, public holidays, time zone;
`selectors/calendars.py`); entities without one use the default calendar (Monday to Friday).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Aggregate, Avg, Count, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from workbench import business_time as bt
from workbench.models import Document, ExceptionItem, LegalEntity
from workbench.models.exceptions import ACTIVE_STATUSES, Status
from workbench.money import quantize
from workbench.roles import in_scope
from workbench.selectors.calendars import Calendars

WEEKS = 12

# Backlog buckets by age in business days: (query value, label, fewest days, most days or None).
BUSINESS_AGE_BUCKETS = [
    ("bd0-1", "0–1 business days", 0, 1),
    ("bd2-5", "2–5 business days", 2, 5),
    ("bd6-10", "6–10 business days", 6, 10),
    ("bd10+", "Over 10 business days", 11, None),
]

DEFINITIONS = {
    "exception_rate": (
        "Exception items raised on documents in the period, per 100 documents that arrived in the "
        "workbench in the same period (an item is counted in the week it was opened, a document in the "
        "week it arrived)."
    ),
    "first_time_right": (
        "Of the documents the ERP posted in the period, the share that never had an exception item "
        "(of the chosen code, when one is chosen)."
    ),
    "posting_lag": (
        "Time from business approval to the ERP's posting, for documents posted in the period: the "
        "median (p50) and the 90th percentile (p90), in hours."
    ),
    "time_to_resolve": (
        "Mean time from opening to resolution of the items resolved in the period, in hours "
        "(overridden items are not resolved and are left out)."
    ),
    "backlog": (
        "Active items (open, in progress, waiting) now, by age in business days (each entity's "
        "working days, public holidays excluded) "
        "since they were opened; the trend counts the items active at the end of each week."
    ),
    "money_at_risk": (
        "Amount at risk of the active items, per entity in each currency (never added across "
        "currencies); the trend is the amount at risk at the end of each week."
    ),
}


@dataclass(frozen=True)
class KpiFilters:
    entity: LegalEntity | None = None
    source_system: str = ""
    code: str = ""

    def as_params(self) -> dict[str, str]:
        """The same filters as queue query parameters."""
        params = {"entity": self.entity.code if self.entity else "", "source": self.source_system, "code": self.code}
        return {k: v for k, v in params.items() if v}


# --- business days ------------------------------------------------------------------------------


def earliest_date_with_age_at_most(today: date, days: int, workday=lambda d: d.weekday() < 5) -> date:
    """The earliest opening date whose age on `today` is at most `days` business days.

    Age = the business days after the opening date up to and including today: an item opened on
    Friday is one business day old on Monday (none yet if that Monday is a public holiday).
    """
    d, age = today, 0
    while True:
        step = 1 if workday(d) else 0
        if age + step > days:
            return d
        age += step
        d -= timedelta(days=1)


def day_start(d: date) -> datetime:
    return timezone.make_aware(datetime.combine(d, time.min))


def business_age_q(key: str, now: datetime | None = None, cals: Calendars | None = None) -> Q | None:
    """The `opened_at` range of a backlog bucket (`bd2-5`...), or None for an unknown key.

    Each entity's age counts its own business calendar (working days, public holidays, its time
    zone); items of entities without one count the default calendar."""
    bucket = next((b for b in BUSINESS_AGE_BUCKETS if b[0] == key), None)
    if bucket is None:
        return None
    _, _, fewest, most = bucket
    now = now or timezone.now()
    cals = cals or Calendars()

    def opened_in(cal: bt.Calendar) -> Q:
        today = bt.local_date(cal, now)

        def start(d: date) -> datetime:
            return datetime.combine(d, time.min, tzinfo=cal.zone)

        def workday(d: date) -> bool:
            return bt.is_business_day(cal, d)

        q = Q()
        if most is not None:
            q &= Q(opened_at__gte=start(earliest_date_with_age_at_most(today, most, workday)))
        if fewest > 0:
            q &= Q(opened_at__lt=start(earliest_date_with_age_at_most(today, fewest - 1, workday)))
        return q

    own = cals.entity_ids()
    q = opened_in(cals.get(None)) & ~Q(entity_id__in=own) if own else opened_in(cals.get(None))
    for entity_id in own:
        q |= Q(entity_id=entity_id) & opened_in(cals.get(entity_id))
    return q


# --- weeks --------------------------------------------------------------------------------------


def week_starts(now: datetime, weeks: int = WEEKS) -> list[date]:
    today = timezone.localtime(now).date()
    monday = today - timedelta(days=today.weekday())
    return [monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]


def week_range(monday: date) -> tuple[datetime, datetime]:
    return day_start(monday), day_start(monday + timedelta(days=7))


def week_param(monday: date) -> str:
    """ISO week as the queue's `week` parameter: 2026-W47."""
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def _week_key(value) -> date:
    if isinstance(value, datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


# --- percentiles --------------------------------------------------------------------------------


class _PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate; `fraction` is a constant from this module, not user input."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=repr(float(fraction)), output_field=DurationField(), **extra)


def _interpolated(values: list[timedelta], fraction: float) -> timedelta | None:
    """percentile_cont's linear interpolation, for databases without it (SQLite in development)."""
    if not values:
        return None
    pos = (len(values) - 1) * fraction
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def _hours(td: timedelta | None) -> Decimal | None:
    if td is None:
        return None
    return (Decimal(td.total_seconds()) / 3600).quantize(Decimal("0.1"))


def _pct(part: int, whole: int, per: int = 100) -> Decimal | None:
    return (Decimal(part * per) / whole).quantize(Decimal("0.1")) if whole else None


# --- the read -----------------------------------------------------------------------------------


def kpis_get(*, user, filters: KpiFilters = KpiFilters(), now: datetime | None = None, weeks: int = WEEKS) -> dict:
    """All dashboard numbers for `user`'s entities, narrowed by `filters`."""
    now = now or timezone.now()
    mondays = week_starts(now, weeks)
    start = day_start(mondays[0])
    documents = in_scope(Document.objects.all(), user)
    items = in_scope(ExceptionItem.objects.all(), user)
    if filters.entity is not None:
        documents = documents.filter(entity=filters.entity)
        items = items.filter(entity=filters.entity)
    if filters.source_system:
        documents = documents.filter(source_system=filters.source_system)
        items = items.filter(document__source_system=filters.source_system)
    if filters.code:
        items = items.filter(code=filters.code)
    ctx = _Ctx(now=now, start=start, mondays=mondays, documents=documents, items=items, filters=filters)
    active = _active_items(ctx)
    return {
        "window": {"start": start, "end": now, "weeks": [m for m in mondays]},
        "filters": {
            "entity": filters.entity.code if filters.entity else "",
            "source_system": filters.source_system,
            "code": filters.code,
        },
        "exception_rate": _exception_rate(ctx),
        "first_time_right": _first_time_right(ctx),
        "posting_lag": _posting_lag(ctx),
        "time_to_resolve": _time_to_resolve(ctx),
        "backlog": _backlog(ctx, active),
        "money_at_risk": _money_at_risk(ctx, active),
    }


@dataclass
class _Ctx:
    now: datetime
    start: datetime
    mondays: list[date]
    documents: object
    items: object
    filters: KpiFilters


def _by_week(qs, field: str, **aggregates) -> dict[date, dict]:
    rows = qs.annotate(week=TruncWeek(field)).values("week").annotate(**aggregates).order_by("week")
    return {_week_key(r.pop("week")): r for r in rows}


def _exception_rate(ctx: _Ctx) -> dict:
    docs = _by_week(
        ctx.documents.filter(created_at__gte=ctx.start, created_at__lte=ctx.now), "created_at", n=Count("id")
    )
    raised = _by_week(
        ctx.items.filter(document__isnull=False, opened_at__gte=ctx.start, opened_at__lte=ctx.now),
        "opened_at",
        n=Count("id"),
    )
    trend = []
    for m in ctx.mondays:
        d, i = docs.get(m, {}).get("n", 0), raised.get(m, {}).get("n", 0)
        trend.append({"week": m, "documents": d, "items": i, "per_100": _pct(i, d)})
    total_d, total_i = sum(p["documents"] for p in trend), sum(p["items"] for p in trend)
    return {"documents": total_d, "items": total_i, "per_100": _pct(total_i, total_d), "trend": trend}


def _first_time_right(ctx: _Ctx) -> dict:
    touched = ExceptionItem.objects.filter(document=OuterRef("pk"))
    if ctx.filters.code:
        touched = touched.filter(code=ctx.filters.code)
    posted = ctx.documents.filter(posted_at__gte=ctx.start, posted_at__lte=ctx.now).annotate(touched=Exists(touched))
    weekly = _by_week(posted, "posted_at", posted=Count("id"), clean=Count("id", filter=Q(touched=False)))
    trend = []
    for m in ctx.mondays:
        row = weekly.get(m, {"posted": 0, "clean": 0})
        trend.append(
            {"week": m, "posted": row["posted"], "clean": row["clean"], "percent": _pct(row["clean"], row["posted"])}
        )
    n, clean = sum(p["posted"] for p in trend), sum(p["clean"] for p in trend)
    return {"posted": n, "clean": clean, "percent": _pct(clean, n), "trend": trend}


def _posting_lag(ctx: _Ctx) -> dict:
    lag = ExpressionWrapper(F("posted_at") - F("approved_at"), output_field=DurationField())
    posted = ctx.documents.filter(posted_at__gte=ctx.start, posted_at__lte=ctx.now, approved_at__isnull=False)
    if connection.vendor == "postgresql":
        weekly = _by_week(
            posted, "posted_at", n=Count("id"), p50=_PercentileCont(lag, 0.5), p90=_PercentileCont(lag, 0.9)
        )
        overall = posted.aggregate(p50=_PercentileCont(lag, 0.5), p90=_PercentileCont(lag, 0.9))
    else:
        values = list(posted.annotate(lag=lag, week=TruncWeek("posted_at")).values_list("week", "lag").order_by("lag"))
        weekly = {}
        for m in {_week_key(w) for w, _ in values}:
            lags = [v for w, v in values if _week_key(w) == m]
            weekly[m] = {"n": len(lags), "p50": _interpolated(lags, 0.5), "p90": _interpolated(lags, 0.9)}
        lags = [v for _, v in values]
        overall = {"p50": _interpolated(lags, 0.5), "p90": _interpolated(lags, 0.9)}
    trend = []
    for m in ctx.mondays:
        row = weekly.get(m, {"n": 0, "p50": None, "p90": None})
        trend.append({"week": m, "posted": row["n"], "p50_hours": _hours(row["p50"]), "p90_hours": _hours(row["p90"])})
    return {
        "posted": sum(p["posted"] for p in trend),
        "p50_hours": _hours(overall["p50"]),
        "p90_hours": _hours(overall["p90"]),
        "trend": trend,
    }


def _time_to_resolve(ctx: _Ctx) -> dict:
    took = ExpressionWrapper(F("resolved_at") - F("opened_at"), output_field=DurationField())
    resolved = ctx.items.filter(status=Status.RESOLVED, resolved_at__gte=ctx.start, resolved_at__lte=ctx.now)
    weekly = _by_week(resolved, "resolved_at", n=Count("id"), mean=Avg(took))
    by_code = resolved.values("code").annotate(n=Count("id"), mean=Avg(took)).order_by("-mean", "code")
    by_team = resolved.values("owner_team").annotate(n=Count("id"), mean=Avg(took)).order_by("-mean", "owner_team")
    overall = resolved.aggregate(n=Count("id"), mean=Avg(took))
    trend = []
    for m in ctx.mondays:
        row = weekly.get(m, {"n": 0, "mean": None})
        trend.append({"week": m, "resolved": row["n"], "mean_hours": _hours(row["mean"])})
    return {
        "resolved": overall["n"],
        "mean_hours": _hours(overall["mean"]),
        "by_code": [{"code": r["code"], "resolved": r["n"], "mean_hours": _hours(r["mean"])} for r in by_code],
        "by_team": [{"team": r["owner_team"], "resolved": r["n"], "mean_hours": _hours(r["mean"])} for r in by_team],
        "trend": trend,
    }


def _week_ends(ctx: _Ctx) -> list[datetime]:
    """The moment each week's point describes: its end, or now for the current week."""
    return [min(week_range(m)[1], ctx.now) for m in ctx.mondays]


def active_at_q(t: datetime) -> Q:
    # From the opening and resolution times: an item reopened later counts as active from its opening.
    return Q(opened_at__lte=t) & (Q(resolved_at__isnull=True) | Q(resolved_at__gt=t))


def _active_items(ctx: _Ctx) -> list[dict]:
    """Backlog and money at risk in one scan: per entity and currency, the active items now (by
    business-day bucket), and the items and amounts active at the end of each week."""
    ends = _week_ends(ctx)
    active = Q(status__in=ACTIVE_STATUSES)
    cals = Calendars()  # loaded once for the four buckets
    history = ctx.items.filter(opened_at__lte=ctx.now).filter(
        Q(resolved_at__isnull=True) | Q(resolved_at__gt=ctx.start)
    )
    return list(
        history.values("entity__code", "entity__name", "currency")
        .annotate(
            amount=Sum("amount_at_risk", filter=active, default=Decimal(0)),
            items=Count("id", filter=active),
            **{
                f"b_{key}": Count("id", filter=active & business_age_q(key, ctx.now, cals))
                for key, *_ in BUSINESS_AGE_BUCKETS
            },
            **{f"n{i}": Count("id", filter=active_at_q(t)) for i, t in enumerate(ends)},
            **{f"w{i}": Sum("amount_at_risk", filter=active_at_q(t), default=Decimal(0)) for i, t in enumerate(ends)},
        )
        .order_by("entity__code", "currency")
    )


def _backlog(ctx: _Ctx, rows: list[dict]) -> dict:
    # Counts summed over the few (entity, currency) rows: items are counted once, amounts never added here.
    ends = _week_ends(ctx)
    counts = {key: sum(r[f"b_{key}"] for r in rows) for key, *_ in BUSINESS_AGE_BUCKETS}
    return {
        "total": sum(counts.values()),
        "buckets": [{"key": key, "label": label, "count": counts[key]} for key, label, *_ in BUSINESS_AGE_BUCKETS],
        "trend": [
            {"week": m, "at": ends[i], "count": sum(r[f"n{i}"] for r in rows)} for i, m in enumerate(ctx.mondays)
        ],
    }


def _money_at_risk(ctx: _Ctx, rows: list[dict]) -> dict:
    ends = _week_ends(ctx)
    out = []
    for r in rows:
        cur = r["currency"]
        out.append(
            {
                "entity": r["entity__code"] or "",
                "entity_name": r["entity__name"] or "",
                "currency": cur,
                "amount": quantize(r["amount"], cur),
                "items": r["items"],
                "trend": [
                    {"week": m, "at": ends[i], "amount": quantize(r[f"w{i}"], cur)} for i, m in enumerate(ctx.mondays)
                ],
            }
        )
    # An entity whose items are all settled now keeps its row (0 now), so its history still shows.
    return {"rows": out}
