"""The close timetable: per entity its business calendar and the current and next period's dates.

Everyone who sees the workbench sees their own entities; administrators change calendars, added
days and offsets (access.py). An entity outside the account's scope answers 404.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from workbench import business_time as bt
from workbench import roles
from workbench.errors import WorkbenchError
from workbench.models import AccountingPeriod, LegalEntity
from workbench.models.calendars import OFFSET_LIMIT, CalendarDay
from workbench.selectors.calendars import Calendars, close_overview, period_dates_list
from workbench.services.calendars import (
    business_calendar_save,
    calendar_day_add,
    calendar_day_remove,
    close_timetable_set,
)

WEEKDAYS = [(str(i), name) for i, name in enumerate(bt.WEEKDAY_NAMES)]


def _offset_field(required=True):
    return forms.IntegerField(min_value=-OFFSET_LIMIT, max_value=OFFSET_LIMIT, required=required)


class CalendarForm(forms.Form):
    time_zone = forms.CharField(max_length=64)
    country = forms.CharField(max_length=2, required=False)
    subdivision = forms.CharField(max_length=10, required=False)
    weekdays = forms.MultipleChoiceField(choices=WEEKDAYS)
    work_start = forms.TimeField()
    work_end = forms.TimeField()
    expense_cutoff_days = _offset_field()
    ap_cutoff_days = _offset_field()
    close_days = _offset_field()


class DayForm(forms.Form):
    day = forms.DateField()
    working = forms.BooleanField(required=False)
    name = forms.CharField(max_length=100)


class PeriodForm(forms.Form):
    expense_cutoff_days = _offset_field(False)
    ap_cutoff_days = _offset_field(False)
    close_days = _offset_field(False)


def _entities(user):
    return roles.in_scope(LegalEntity.objects.order_by("code"), user, field="pk")


def _entity_or_404(request, pk) -> LegalEntity:
    return get_object_or_404(_entities(request.user), pk=pk)


def close_page(request):
    return render(request, "workbench/close.html", {"rows": close_overview(_entities(request.user))})


def entity_page(request, pk):
    return _render_entity(request, _entity_or_404(request, pk))


def _render_entity(request, entity, *, error=""):
    cals = Calendars()
    periods = AccountingPeriod.objects.filter(entity=entity).select_related("timetable").order_by("-start")[:24]
    row = cals.row(entity.pk)
    cal = cals.get(entity.pk)
    context = {
        "entity": entity,
        "calendar": cal,
        "own": row is not None,
        "offsets": cals.offsets(entity.pk),
        "weekdays": WEEKDAYS,
        "working_days": {str(d) for d in cal.weekdays},
        "days": CalendarDay.objects.filter(entity=entity).order_by("day"),
        "periods": period_dates_list(entity.pk, periods, cals),
        "zones": bt.time_zones(),
        "countries": sorted(bt.countries()),
        "error": error,
    }
    return render(request, "workbench/close_entity.html", context)


def _done(request, entity, message):
    messages.success(request, message)
    return redirect("close:entity", pk=entity.pk)


def _refused(request, entity, form=None, exc=None):
    if exc is not None:
        text = str(exc)
    else:
        text = "; ".join(f"{k.replace('_', ' ')}: {' '.join(v)}" for k, v in form.errors.items())
    return _render_entity(request, entity, error=text)


@require_POST
def calendar_save(request, pk):
    entity = _entity_or_404(request, pk)
    form = CalendarForm(request.POST)
    if not form.is_valid():
        return _refused(request, entity, form)
    d = form.cleaned_data
    try:
        business_calendar_save(
            entity=entity,
            actor=request.user,
            time_zone=d["time_zone"].strip(),
            weekdays=[int(w) for w in d["weekdays"]],
            work_start=d["work_start"],
            work_end=d["work_end"],
            country=d["country"],
            subdivision=d["subdivision"],
            expense_cutoff_days=d["expense_cutoff_days"],
            ap_cutoff_days=d["ap_cutoff_days"],
            close_days=d["close_days"],
        )
    except WorkbenchError as exc:
        return _refused(request, entity, exc=exc)
    return _done(request, entity, f"Saved the calendar of {entity.code}: close dates and items' deadlines follow.")


@require_POST
def day_add(request, pk):
    entity = _entity_or_404(request, pk)
    form = DayForm(request.POST)
    if not form.is_valid():
        return _refused(request, entity, form)
    d = form.cleaned_data
    try:
        row = calendar_day_add(entity=entity, day=d["day"], working=d["working"], name=d["name"], actor=request.user)
    except WorkbenchError as exc:
        return _refused(request, entity, exc=exc)
    kind = "working day" if row.working else "holiday"
    return _done(request, entity, f"Added {row.day:%Y-%m-%d} ({row.name}) as a {kind} of {entity.code}.")


@require_POST
def day_remove(request, pk):
    day = get_object_or_404(CalendarDay.objects.select_related("entity"), pk=pk)
    if not roles.entity_allowed(request.user, day.entity_id):
        raise Http404
    calendar_day_remove(day=day, actor=request.user)
    return _done(request, day.entity, f"Removed {day.day:%Y-%m-%d} from the calendar of {day.entity.code}.")


@require_POST
def period_save(request, pk):
    period = get_object_or_404(AccountingPeriod.objects.select_related("entity"), pk=pk)
    if not roles.entity_allowed(request.user, period.entity_id):
        raise Http404
    form = PeriodForm(request.POST)
    if not form.is_valid():
        return _refused(request, period.entity, form)
    try:
        close_timetable_set(period=period, actor=request.user, **form.cleaned_data)
    except WorkbenchError as exc:
        return _refused(request, period.entity, exc=exc)
    return _done(request, period.entity, f"Saved the close dates of {period.code}: items' deadlines follow.")
