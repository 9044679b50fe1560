"""The queue's chips for filters that arrive from a link (the KPI dashboard) rather than the filter form."""

from django import template
from django.utils.http import urlencode

register = template.Library()

# Parameter, what the chip says. The form has no control for these: a chip shows and keeps each one.
LINKED_FILTERS = [
    ("source", "Source system"),
    ("team", "Team"),
    ("week", "Opened in week"),
    ("resolved_week", "Resolved in week"),
    ("active_at", "Active at the end of"),
]


@register.inclusion_tag("workbench/_queue_chips.html", takes_context=True)
def linked_filter_chips(context):
    query = context["request"].GET
    chips = []
    for name, label in LINKED_FILTERS:
        value = query.get(name, "")
        if value:
            rest = [(k, v) for k, vs in query.lists() if k not in (name, "page") for v in vs]
            chips.append({"name": name, "label": label, "value": value, "without": urlencode(rest)})
    return {"chips": chips}
