"""The exception queue: filter, count, page. Full page or the table partial for HTMX.

`?view=groups` shows the same filtered items by root cause (one row per ExceptionGroup) instead.
"""

from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.core.paginator import Page, Paginator
from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from workbench.errors import WorkbenchError
from workbench.filters import ExceptionItemFilter, assignee_choices, parse_group, queue_defaults
from workbench.models import ExceptionGroup, ExceptionItem, OverrideReason
from workbench.selectors import GROUP_SORTS, exception_counts, exception_group_page, exception_item_list
from workbench.selectors.calendars import CloseRiskFirst
from workbench.selectors.saved_views import role_default_view
from workbench.services.item_actions import exception_item_assign
from workbench.web.scoping import items_for, may_work
from workbench.web.views.items import mapping_link
from workbench.web.views.saved_views import saved_views_context

PAGE_SIZE = 50
GROUP_SORT_LABELS = [("amount", "At risk"), ("count", "Items"), ("oldest", "Oldest")]


def queue_filter_data(request):
    """The queue's filter parameters as the person sees them applied, and the role's default view if it
    was used: `/queue/` with no query string opens on it. The exports take the same parameters."""
    default_view = None if request.GET else role_default_view(request.user)
    data = QueryDict(default_view.query, mutable=True) if default_view else request.GET.copy()
    queue_defaults(data, request.user)
    return data, default_view


@vary_on_headers("HX-Request")
def queue(request):
    data, default_view = queue_filter_data(request)
    # Only the account's legal entities: the list, its tab counts and its root-cause groups alike.
    scoped = items_for(request.user, exception_item_list())
    filterset = ExceptionItemFilter(data, queryset=scoped, request=request)
    qs = filterset.qs
    # Tab counts follow every filter but the category itself, so each tab says what it would show.
    others = data.copy()
    others.pop("category", None)
    counts = exception_counts(ExceptionItemFilter(others, queryset=scoped, request=request).qs)
    params = data.copy()
    params.pop("page", None)
    view = "groups" if data.get("view") == "groups" else "items"
    params.pop("view", None)
    params.pop("group_sort", None)
    params.pop("money_currency", None)
    # Links from a root cause back to its items keep every filter but the view's own.
    items_params = _without(params, "group")
    if view == "groups":
        group_sort = data.get("group_sort") if data.get("group_sort") in GROUP_SORTS else "amount"
        params["view"] = "groups"
        result = exception_group_page(
            qs,
            sort=group_sort,
            page=request.GET.get("page"),
            per_page=PAGE_SIZE,
            currency=data.get("money_currency", ""),
        )
        paginator = Paginator([], PAGE_SIZE)
        paginator.count = result["count"]
        page = Page(result["rows"], result["number"], paginator)
        for row in page:
            row["mapping_link"] = mapping_link(row["example"]) if row["example"] else ""
        extra = {
            "view": view,
            "group_sort": group_sort,
            "group_sorts": GROUP_SORT_LABELS,
            "ungrouped": result["ungrouped"],
            "params_without_sort": params.urlencode(),
            "money_currency": result["currency"],
            "money_currencies": result["currencies"],
        }
        if group_sort != "amount":
            params["group_sort"] = group_sort
        elif data.get("money_currency") == result["currency"]:
            params["money_currency"] = result["currency"]
    else:
        # The default order (close risk first) pages in two indexed parts instead of one full sort.
        sorted_by = filterset.form.cleaned_data.get("sort") if filterset.is_valid() else None
        paginator = Paginator(qs if sorted_by else CloseRiskFirst(qs), PAGE_SIZE)
        # The tab counts already hold this filter's total: don't count the same rows twice.
        category = filterset.form.cleaned_data.get("category") if filterset.is_valid() else None
        paginator.count = (
            dict((c, n) for c, _, n in counts["by_category"]).get(category, counts["total"])
            if category
            else counts["total"]
        )
        page = paginator.get_page(request.GET.get("page"))
        extra = {"view": view}
    context = {
        "filter": filterset,
        "page": page,
        "counts": counts,
        "params": params.urlencode(),
        "assignees": assignee_choices(),
        "oob": bool(request.htmx),
        "group": _group(data.get("group")),
        "params_without_group": _without(params, "group"),
        "items_params": items_params,
        "override_reasons": OverrideReason.objects.filter(active=True),  # the bulk bar's override reasons
        **saved_views_context(request, default_view),
        **extra,
    }
    template = "workbench/queue.html#results" if request.htmx and not request.htmx.boosted else "workbench/queue.html"
    return render(request, template, context)


NO_GROUP = SimpleNamespace(pk="none", title="none shared (items on their own)")


def _group(value):
    value = str(value or "").strip()
    if not value:
        return None
    group = parse_group(value)
    if group == "none":
        return NO_GROUP
    found = ExceptionGroup.objects.filter(pk=group).first() if group is not None else None
    # A link to a group that is gone (or a hand-typed value) says so, instead of an unexplained empty list.
    return found or SimpleNamespace(pk=value[:40], title=f"#{value[:40]} is not a known root cause")


def _without(params, key):
    p = params.copy()
    p.pop(key, None)
    return p.urlencode()


BULK_LIMIT = 500


@require_POST
def bulk_assign(request):
    """Assign the ticked items (up to BULK_LIMIT) to one person; the table then redraws itself."""
    ids = [int(i) for i in request.POST.getlist("item") if i.isdecimal() and len(i) < 12][:BULK_LIMIT]
    name = request.POST.get("assignee", "")
    user = request.user if name == "me" else get_user_model().objects.filter(username=name).first()
    done, skipped = 0, 0
    for item in items_for(request.user, ExceptionItem.objects.filter(pk__in=ids)):
        if not may_work(request.user, item):
            skipped += 1
            continue
        try:
            exception_item_assign(item=item, assignee=user, actor=request.user)
            done += 1
        except WorkbenchError:
            skipped += 1  # resolved meanwhile, or changed by someone else
    who = user.get_username() if user else "nobody"
    message = f"Assigned {done} item{'s' if done != 1 else ''} to {who}." + (
        f" {skipped} skipped (no longer open, or not your kind of work)." if skipped else ""
    )
    if not ids:
        message = "Tick the items to assign first."
    response = trigger_client_event(
        HttpResponse(status=204), "toast", {"message": message, "level": "success" if done else "error"}
    )
    return trigger_client_event(response, "queueChanged", {})
