"""FilterSets shared by the queue screen and the API (one definition, two adapters)."""

from datetime import datetime, timedelta

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from workbench.models import Connection, Document, ExceptionItem, LegalEntity
from workbench.models.exceptions import ACTIVE_STATUSES, SNOOZED, Category, Status
from workbench.roles import WORK_BUSINESS, WORK_TECHNICAL, in_scope
from workbench.rules import CODES
from workbench.search import fold
from workbench.selectors.calendars import close_risk_q
from workbench.selectors.due_soon import OPEN_INVOICE, due_soon_rank
from workbench.selectors.kpis import BUSINESS_AGE_BUCKETS, active_at_q, business_age_q, day_start, week_range
from workbench.selectors.suppliers import system_label

AGE_CHOICES = [
    ("1d", "Under 1 day"),
    ("1-3d", "1-3 days"),
    ("3-7d", "3-7 days"),
    ("7d+", "Over 7 days"),
    ("overdue", "Past SLA"),
]
# The KPI dashboard's backlog buckets, in business days (its bars link here).
AGE_CHOICES += [(key, label) for key, label, *_ in BUSINESS_AGE_BUCKETS]
DUE_CHOICES = [("soon", "Invoice due soon"), ("overdue", "Invoice overdue")]
CLOSE_CHOICES = [("risk", "Close risk")]
# "active" is what needs someone now: snoozed items are set aside until their date or event.
STATUS_CHOICES = [("active", "All active"), ("snoozed", "Snoozed")] + list(Status.choices)


class CurrencyAwareOrdering(django_filters.OrderingFilter):
    """Amounts are sorted within each currency (never 100 EUR against 100 USD without a rate)."""

    def filter(self, qs, value):
        if value and any(v.lstrip("-") == "amount" for v in value):
            amount = "-amount_at_risk" if "-amount" in value else "amount_at_risk"
            return qs.order_by("currency", amount, "id")
        return super().filter(qs, value)


class ExceptionItemFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    category = django_filters.ChoiceFilter(choices=Category.choices, empty_label="All categories")
    code = django_filters.ChoiceFilter(choices=[(c, c) for c in CODES], empty_label="All codes")
    status = django_filters.ChoiceFilter(choices=STATUS_CHOICES, method="by_status", empty_label="Any status")
    entity = django_filters.ModelChoiceFilter(
        queryset=LegalEntity.objects.all(), to_field_name="code", empty_label="All entities"
    )
    assignee = django_filters.CharFilter(method="by_assignee", label="Assignee")
    age = django_filters.ChoiceFilter(choices=AGE_CHOICES, method="by_age", empty_label="Any age")
    kind = django_filters.ChoiceFilter(choices=ExceptionItem.Kind.choices, empty_label="Finance and integration")
    group = django_filters.CharFilter(method="by_group", label="Root cause group")
    due = django_filters.ChoiceFilter(choices=DUE_CHOICES, method="by_due", empty_label="Any due date")
    # The KPI dashboard's links (workbench/selectors/kpis.py): source system, team, ISO week, a past moment.
    source = django_filters.CharFilter(field_name="document__source_system", label="Source system")
    team = django_filters.CharFilter(field_name="owner_team", label="Team")
    week = django_filters.CharFilter(method="by_week", label="Opened in week (2026-W47)")
    resolved_week = django_filters.CharFilter(method="by_week", label="Resolved in week")
    active_at = django_filters.DateFilter(method="by_active_at", label="Active at the end of")
    close = django_filters.ChoiceFilter(choices=CLOSE_CHOICES, method="by_close", empty_label="Any close date")
    sort = CurrencyAwareOrdering(
        fields=(("sla_due_at", "sla"), ("opened_at", "opened"), ("amount_at_risk", "amount")),
        field_labels={"sla_due_at": "SLA due", "opened_at": "Opened", "amount_at_risk": "Amount at risk"},
        empty_label="Most urgent first",
        label="Sort",
    )

    class Meta:
        model = ExceptionItem
        fields = ["q", "category", "code", "status", "entity", "assignee", "age", "kind", "group", "due", "sort"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _entities_in_scope(self)

    def search(self, qs, name, value):
        value = value.strip()
        if not value:
            return qs
        # One trigram-indexed column (on PostgreSQL) holds the item's and its document's words.
        cond = Q(search__contains=fold(value))
        if value.isdecimal() and len(value) < 12:
            cond |= Q(pk=int(value))
        return qs.filter(cond)

    def by_status(self, qs, name, value):
        if value == "active":
            return qs.filter(status__in=ACTIVE_STATUSES).exclude(SNOOZED)
        return qs.filter(SNOOZED) if value == "snoozed" else qs.filter(status=value)

    def by_assignee(self, qs, name, value):
        if value in ("none", "unassigned"):
            return qs.filter(assignee__isnull=True)
        if value == "me" and getattr(self.request, "user", None) and self.request.user.is_authenticated:
            return qs.filter(assignee=self.request.user)
        return qs.filter(assignee__username=value)

    def by_group(self, qs, name, value):
        """A group's id, or "none": the items that share no root cause with any other."""
        group = parse_group(value)
        if group == "none":
            return qs.filter(group__isnull=True)
        return qs.filter(group_id=group) if group is not None else qs.none()  # not a group: nothing, not everything

    def by_due(self, qs, name, value):
        """Items on an unpaid invoice due within the admin's business days (overdue ones too), or overdue."""
        if value == "overdue":
            return qs.filter(OPEN_INVOICE, document__due_date__lt=timezone.localdate())
        return qs.alias(due_rank=due_soon_rank()).filter(due_rank=0) if value == "soon" else qs

    def by_week(self, qs, name, value):
        """An ISO week (2026-W47): items opened (`week`) or resolved (`resolved_week`) in it."""
        try:
            start, end = week_range(datetime.strptime(f"{value.strip()}-1", "%G-W%V-%u").date())
        except (ValueError, OverflowError):
            return qs.none()  # not a week: nothing, not everything
        field = "resolved_at" if name == "resolved_week" else "opened_at"
        return qs.filter(**{f"{field}__gte": start, f"{field}__lt": end})

    def by_active_at(self, qs, name, value):
        """Items that were active at the end of that day (from their opening and resolution times)."""
        try:
            return qs.filter(active_at_q(day_start(value + timedelta(days=1))))
        except OverflowError:
            return qs.none()

    def by_close(self, qs, name, value):
        """Items whose document's period closes within the close-risk window (or has closed)."""
        return qs.filter(close_risk_q()) if value == "risk" else qs

    def by_age(self, qs, name, value):
        now = timezone.now()
        business = business_age_q(value, now)
        if business is not None:
            return qs.filter(business)
        d = timedelta(days=1)
        if value == "1d":
            return qs.filter(opened_at__gt=now - d)
        if value == "1-3d":
            return qs.filter(opened_at__lte=now - d, opened_at__gt=now - 3 * d)
        if value == "3-7d":
            return qs.filter(opened_at__lte=now - 3 * d, opened_at__gt=now - 7 * d)
        if value == "7d+":
            return qs.filter(opened_at__lte=now - 7 * d)
        if value == "overdue":
            return qs.filter(status__in=ACTIVE_STATUSES, sla_due_at__lt=now)
        return qs


def _entities_in_scope(filterset) -> None:
    """The entity choices are the account's own: others are neither offered nor accepted."""
    user = getattr(filterset.request, "user", None)
    if user is not None:
        filterset.filters["entity"].queryset = in_scope(LegalEntity.objects.all(), user, field="pk")


def parse_group(value) -> int | str | None:
    """The queue's `group` parameter: "none", a group id, or None when it is neither."""
    value = str(value or "").strip()
    if value == "none":
        return value
    return int(value) if value.isdecimal() and len(value) < 12 else None


def assignee_choices():
    return get_user_model().objects.filter(is_active=True).order_by("username").values_list("username", flat=True)


def source_system_choices(asked: str = ""):
    """The systems documents come from: each connection's kind, the known sources, and the one asked
    for (a source whose connection was removed still filters). Read from the small connections
    table, not as a DISTINCT over every document."""
    systems = set(Connection.objects.values_list("kind", flat=True)) | {"concur", "coupa", "einvoice", "api"}
    if asked and len(asked) <= 30 and asked.isprintable():
        systems.add(asked)
    return [(s, "Workbench API" if s == "api" else system_label(s)) for s in sorted(systems)]


def queue_defaults(data, user):
    """The queue's defaults on (mutable) filter data: active items only, and an integration engineer
    opens on the technical tab ("All" stays a click). Every screen that lists "the queue" applies them."""
    if "status" not in data:
        data["status"] = "active"  # Monday morning: what still needs someone
    if "category" not in data and user.has_perm(WORK_TECHNICAL) and not user.has_perm(WORK_BUSINESS):
        data["category"] = Category.TECHNICAL
    return data


class DocumentFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    financial_status = django_filters.ChoiceFilter(choices=Document.FinancialStatus.choices)
    entity = django_filters.ModelChoiceFilter(queryset=LegalEntity.objects.all(), to_field_name="code")
    # The documents list (screens/documents.html) filters like the queue does.
    kind = django_filters.ChoiceFilter(choices=Document.Kind.choices, empty_label="All kinds")
    source_system = django_filters.ChoiceFilter(choices=[], empty_label="All sources")  # filled in __init__
    business_status = django_filters.ChoiceFilter(choices=Document.BusinessStatus.choices, empty_label="Any approval")
    open_exceptions = django_filters.BooleanFilter(
        method="by_open_exceptions", label="Has open exceptions", widget=django_filters.widgets.BooleanWidget
    )

    class Meta:
        model = Document
        fields = ["q", "financial_status", "entity", "kind", "source_system", "business_status", "open_exceptions"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _entities_in_scope(self)
        asked = self.data.get("source_system", "") if self.data else ""
        # Set on the field itself too: once the schema generator has built the class's field, copies keep it.
        choices = source_system_choices(str(asked))
        self.filters["source_system"].extra["choices"] = choices
        self.filters["source_system"].field.choices = choices

    def search(self, qs, name, value):
        value = value.strip()[:200]  # no number, name or id is longer; a 10 MB paste is not a pattern
        return (
            qs.filter(
                Q(number__folded__contains=fold(value))
                | Q(name__folded__contains=fold(value))
                | Q(party_name__folded__contains=fold(value))
                | Q(erp_document_number__iexact=value)
                | Q(source_id__iexact=value)
            )
            if value
            else qs
        )

    def by_open_exceptions(self, qs, name, value):
        if value is None:
            return qs
        active = ExceptionItem.objects.filter(document=OuterRef("pk"), status__in=ACTIVE_STATUSES)
        return qs.filter(Exists(active)) if value else qs.exclude(Exists(active))
