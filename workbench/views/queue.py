"""The exception queue: filter, count, page. Full page or the table partial for HTMX."""

from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.vary import vary_on_headers

from workbench.filters import ExceptionItemFilter, assignee_choices
from workbench.selectors import exception_counts, exception_item_list

PAGE_SIZE = 50


@vary_on_headers("HX-Request")
def queue(request):
    data = request.GET.copy()
    if "status" not in data:
        data["status"] = "active"  # Monday morning: what still needs someone
    filterset = ExceptionItemFilter(data, queryset=exception_item_list(), request=request)
    qs = filterset.qs
    # Tab counts follow every filter but the category itself, so each tab says what it would show.
    others = data.copy()
    others.pop("category", None)
    counts = exception_counts(ExceptionItemFilter(others, queryset=exception_item_list(), request=request).qs)
    paginator = Paginator(qs, PAGE_SIZE)
    # The tab counts already hold this filter's total: don't count the same rows twice.
    category = filterset.form.cleaned_data.get("category") if filterset.is_valid() else None
    paginator.count = dict((c, n) for c, _, n in counts["by_category"]).get(category, counts["total"]) if category else counts["total"]
    page = paginator.get_page(request.GET.get("page"))
    params = data.copy()
    params.pop("page", None)
    context = {
        "filter": filterset, "page": page, "counts": counts, "params": params.urlencode(),
        "assignees": assignee_choices(), "oob": bool(request.htmx),
        "group": _group(data.get("group")), "params_without_group": _without(params, "group"),
    }
    template = "workbench/queue.html#results" if request.htmx and not request.htmx.boosted else "workbench/queue.html"
    return render(request, template, context)



def _group(value):
    from workbench.models import ExceptionGroup

    return ExceptionGroup.objects.filter(pk=value).first() if value and str(value).isdigit() else None


def _without(params, key):
    p = params.copy()
    p.pop(key, None)
    return p.urlencode()
