"""The queue's filters carried to another screen: bulk work on "all matching", and the item page's
previous/next in the order the person came from (`?<queue query>&pos=<row>` on an item's address)."""

from django.http import QueryDict
from django.urls import reverse

from workbench.filters import ExceptionItemFilter, queue_defaults
from workbench.selectors import exception_item_list
from workbench.web.scoping import items_for

MAX_QUERY = 4000  # characters of a queue query string carried through a form or a link
NAV_WINDOW = 2000  # rows of the queue looked at to find an item's neighbours
NOT_FILTERS = ("page", "view", "group_sort", "money_currency", "pos")


def queue_data(user, query: str) -> QueryDict:
    """The queue's filters as the queue applies them, its defaults included (see views/queue.py)."""
    data = QueryDict(query[:MAX_QUERY], mutable=True)
    for key in NOT_FILTERS:
        data.pop(key, None)
    return queue_defaults(data, user)


def queue_filtered(request, data: QueryDict):
    """The items the queue shows for these filters, in its order; None if a filter is not valid."""
    filterset = ExceptionItemFilter(data, queryset=items_for(request.user, exception_item_list()), request=request)
    return filterset.qs if filterset.is_valid() else None


def _pos(value) -> int | None:
    value = str(value or "")
    return int(value) if value.isdecimal() and len(value) < 7 else None


def queue_neighbours(request, item) -> dict | None:
    """Previous and next item in the queue the person came from, or None when they did not come from one.

    An item that has left the filtered set (just fixed, assigned away) is placed by its row `pos`.
    """
    if not request.GET:
        return None
    raw = request.GET.copy()
    pos = _pos(raw.get("pos"))
    data = queue_data(request.user, raw.urlencode())
    qs = queue_filtered(request, data)
    if qs is None:
        return None
    ids = list(qs.values_list("pk", flat=True)[:NAV_WINDOW])
    if item.pk in ids:
        here = ids.index(item.pk)
        prev_at, next_at = here - 1, here + 1
    elif pos is not None:
        here = min(pos, len(ids))
        prev_at, next_at = here - 1, here  # the row that took its place comes next
    else:
        return {"queue_url": reverse("queue:list") + "?" + data.urlencode(), "prev": "", "next": ""}
    query = data.urlencode()

    def link(at: int) -> str:
        if 0 <= at < len(ids):
            return reverse("items:detail", args=[ids[at]]) + f"?{query}&pos={at}"
        return ""

    return {"queue_url": reverse("queue:list") + "?" + query, "prev": link(prev_at), "next": link(next_at)}
