"""The KPI dashboard: cards and server-drawn charts; every bar and point opens the queue filtered to it."""

from __future__ import annotations

from datetime import timedelta
from itertools import groupby

from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.vary import vary_on_headers

from workbench.money import fmt
from workbench.selectors.kpis import DEFINITIONS, KpiFilters, kpis_get, week_param
from workbench.web import charts
from workbench.web.charts import Mark
from workbench.web.kpi_filters import KpiFilterForm


@vary_on_headers("HX-Request")
def dashboard(request):
    form = KpiFilterForm(request.GET, user=request.user)
    context = {"form": form, "definitions": DEFINITIONS}
    if form.is_valid():
        filters = form.filters()
        kpis = kpis_get(user=request.user, filters=filters)
        context.update(kpis=kpis, charts=_charts(kpis, filters), money=_money_cards(kpis, filters))
    template = (
        "workbench/dashboard.html#results" if request.htmx and not request.htmx.boosted else "workbench/dashboard.html"
    )
    return render(request, template, context)


def _queue(filters: KpiFilters, **params) -> str:
    # An empty category keeps the queue from opening on an engineer's own tab: the link's items, all of them.
    return f"{reverse('queue:list')}?{urlencode({**filters.as_params(), **params, 'category': ''})}"


def _week_label(monday) -> str:
    return monday.strftime("%d %b")


def _active_at(monday, end, now) -> dict:
    """Queue parameters for the items active at a trend point: now for the current week."""
    if end >= now:
        return {"status": "active"}
    return {"status": "", "active_at": (monday + timedelta(days=6)).isoformat()}


def _charts(kpis: dict, filters: KpiFilters) -> dict:
    weeks = {"status": ""}
    rate = kpis["exception_rate"]
    ftr = kpis["first_time_right"]
    lag = kpis["posting_lag"]
    ttr = kpis["time_to_resolve"]
    backlog = kpis["backlog"]
    now = kpis["window"]["end"]

    def raised(p, what):
        return _queue(filters, week=week_param(p["week"]), **weeks), f"Week of {_week_label(p['week'])}: {what}"

    def point(p, value, what, unit):
        href, title = raised(p, what)
        return Mark(_week_label(p["week"]), value, href, title, "" if value is None else f"{value}{unit}")

    return {
        "rate_trend": charts.trend(
            [
                point(
                    p,
                    p["per_100"],
                    f"{p['items']} items on {p['documents']} documents. Open the items raised that week.",
                    " per 100",
                )
                for p in rate["trend"]
            ],
            testid="rate-trend",
        ),
        "ftr_trend": charts.trend(
            [
                point(
                    p,
                    p["percent"],
                    f"{p['clean']} of {p['posted']} posted documents never had an exception. Open the items raised that week.",
                    " %",
                )
                for p in ftr["trend"]
            ],
            testid="ftr-trend",
        ),
        "lag_trend": charts.trend(
            [
                point(
                    p,
                    p["p50_hours"],
                    f"p50 {p['p50_hours']} h, p90 {p['p90_hours']} h over {p['posted']} postings. Open the items raised that week.",
                    " h",
                )
                for p in lag["trend"]
            ],
            testid="lag-trend",
        ),
        "ttr_trend": charts.trend(
            [
                Mark(
                    _week_label(p["week"]),
                    p["mean_hours"],
                    _queue(filters, status="resolved", resolved_week=week_param(p["week"])),
                    f"Week of {_week_label(p['week'])}: {p['resolved']} resolved, {p['mean_hours']} h on average.",
                    "" if p["mean_hours"] is None else f"{p['mean_hours']} h",
                )
                for p in ttr["trend"]
            ],
            testid="ttr-trend",
        ),
        "ttr_by_code": charts.bars(
            [
                Mark(
                    r["code"],
                    r["mean_hours"],
                    _queue(filters, code=r["code"], status="resolved"),
                    f"{r['resolved']} resolved",
                    f"{r['mean_hours']} h",
                )
                for r in ttr["by_code"]
            ],
            testid="ttr-code",
            label_width=210,
        ),
        "ttr_by_team": charts.bars(
            [
                Mark(
                    r["team"] or "—",
                    r["mean_hours"],
                    _queue(filters, team=r["team"], status="resolved"),
                    f"{r['resolved']} resolved",
                    f"{r['mean_hours']} h",
                )
                for r in ttr["by_team"]
            ],
            testid="ttr-team",
        ),
        "backlog": charts.columns(
            [
                Mark(
                    b["label"].replace(" business days", ""),
                    b["count"],
                    _queue(filters, age=b["key"], status="active"),
                    f"{b['count']} active items, {b['label']} old",
                )
                for b in backlog["buckets"]
            ],
            testid="backlog",
        ),
        "backlog_trend": charts.trend(
            [
                Mark(
                    _week_label(p["week"]),
                    p["count"],
                    _queue(filters, **_active_at(p["week"], p["at"], now)),
                    f"{p['count']} items active at the end of the week of {_week_label(p['week'])}",
                )
                for p in backlog["trend"]
            ],
            testid="backlog-trend",
        ),
    }


def _money_cards(kpis: dict, filters: KpiFilters) -> list[dict]:
    """One chart per currency: amounts in different currencies are never drawn on one scale."""
    now = kpis["window"]["end"]
    rows = sorted(kpis["money_at_risk"]["rows"], key=lambda r: (r["currency"], r["entity"]))
    cards = []
    for currency, group in groupby(rows, key=lambda r: r["currency"]):
        group = list(group)
        cards.append(
            {
                "currency": currency,
                "bars": charts.bars(
                    [_money_bar(r, filters) for r in group], testid=f"money-{currency}", label_width=110
                ),
                "trends": [
                    {
                        "entity": r["entity"],
                        "chart": charts.trend(
                            [_money_point(r, p, filters, now) for p in r["trend"]],
                            testid=f"money-trend-{currency}",
                            height=70,
                        ),
                    }
                    for r in group
                ],
            }
        )
    return cards


def _entity(row) -> dict:
    # Items tied to no entity (an outage) are seen only by all-entity accounts: the queue unfiltered.
    return {"entity": row["entity"]} if row["entity"] else {}


def _money_bar(row, filters) -> Mark:
    where = row["entity"] or "no entity"
    href = _queue(filters, **_entity(row), status="active")
    return Mark(row["entity"] or "(no entity)", row["amount"], href, f"{row['items']} active items in {where}",
                fmt(row["amount"], row["currency"]))  # fmt: skip


def _money_point(row, point, filters, now) -> Mark:
    amount = fmt(point["amount"], row["currency"])
    label = _week_label(point["week"])
    href = _queue(filters, **_entity(row), **_active_at(point["week"], point["at"], now))
    return Mark(label, point["amount"], href, f"{amount} at risk at the end of the week of {label}")
