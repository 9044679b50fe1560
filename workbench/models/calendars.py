"""Business calendars and the close timetable: the workbench's own settings, not the ERP's.

An entity's calendar says when its people work (time zone, weekdays, hours, public holidays of a
country, days an admin added); SLAs count those hours. Its close timetable says, per accounting
period, when expense reports and supplier invoices must be in and when the ERP closes the period,
as business-day offsets from the period's end (entity defaults, per-period overrides). An entity
without a calendar row uses settings.BUSINESS_CALENDAR_DEFAULT and CLOSE_OFFSETS_DEFAULT.
"""

from datetime import time

from django.conf import settings
from django.db import models

from .masterdata import AccountingPeriod, LegalEntity

OFFSET_LIMIT = 60  # business days either side of period end; further is a typo


def _offset_check(field: str, name: str, nullable: bool = False) -> models.CheckConstraint:
    q = models.Q(**{f"{field}__gte": -OFFSET_LIMIT, f"{field}__lte": OFFSET_LIMIT})
    if nullable:
        q |= models.Q(**{f"{field}__isnull": True})
    return models.CheckConstraint(condition=q, name=name)


class BusinessCalendar(models.Model):
    entity = models.OneToOneField(LegalEntity, on_delete=models.CASCADE, related_name="business_calendar")
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166 alpha-2: its public holidays count.")
    subdivision = models.CharField(max_length=10, blank=True, help_text="State or region (e.g. BY, NY), optional.")
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Berlin.")
    weekdays = models.JSONField(default=list, help_text="Working weekdays, 0 = Monday … 6 = Sunday.")
    work_start = models.TimeField(default=time(9))
    work_end = models.TimeField(default=time(17))
    expense_cutoff_days = models.SmallIntegerField(default=1, help_text="Business days from period end.")
    ap_cutoff_days = models.SmallIntegerField(default=3, help_text="Business days from period end.")
    close_days = models.SmallIntegerField(default=5, help_text="Business days from period end.")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(work_start__lt=models.F("work_end")), name="calendar_hours"),
            _offset_check("expense_cutoff_days", "calendar_expense_offset"),
            _offset_check("ap_cutoff_days", "calendar_ap_offset"),
            _offset_check("close_days", "calendar_close_offset"),
        ]

    def __str__(self):
        return f"Calendar of {self.entity_id}"


class CalendarDay(models.Model):
    """A day an admin added: an extra holiday (working=False) or an extra working day (working=True)."""

    entity = models.ForeignKey(LegalEntity, on_delete=models.CASCADE, related_name="calendar_days")
    day = models.DateField()
    working = models.BooleanField(default=False)
    name = models.CharField(max_length=100)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["entity", "day"]
        constraints = [models.UniqueConstraint(fields=["entity", "day"], name="uniq_calendar_day")]

    def __str__(self):
        return f"{self.day} {self.name}"


class CloseTimetable(models.Model):
    """One period's close dates. The offsets are overrides (empty: the entity's default); the three
    instants are worked out from them and the calendar whenever either changes, or the ERP syncs."""

    period = models.OneToOneField(AccountingPeriod, on_delete=models.CASCADE, related_name="timetable")
    entity = models.ForeignKey(LegalEntity, on_delete=models.CASCADE, related_name="close_timetables")
    expense_cutoff_days = models.SmallIntegerField(null=True, blank=True)
    ap_cutoff_days = models.SmallIntegerField(null=True, blank=True)
    close_days = models.SmallIntegerField(null=True, blank=True)
    expense_cutoff_at = models.DateTimeField()
    ap_cutoff_at = models.DateTimeField()
    close_at = models.DateTimeField()
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            _offset_check("expense_cutoff_days", "timetable_expense_offset", nullable=True),
            _offset_check("ap_cutoff_days", "timetable_ap_offset", nullable=True),
            _offset_check("close_days", "timetable_close_offset", nullable=True),
        ]

    def __str__(self):
        return f"Close timetable of period {self.period_id}"
