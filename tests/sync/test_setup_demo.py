"""The demo set-up gives its entities their countries' calendars and the first alert rules, once."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from workbench.models import AlertRule, BusinessCalendar
from workbench.selectors.calendars import Calendars

pytestmark = pytest.mark.django_db


def test_the_demo_entities_count_their_own_holidays_and_an_admins_edit_survives_a_rerun(settings):
    settings.SANDBOXES_ALLOWED = True
    call_command("setup_demo", verbosity=0)
    us = BusinessCalendar.objects.get(entity__code="NW-US")
    assert (us.country, us.time_zone) == ("US", "America/New_York")
    # 48 business hours from Wednesday before Thanksgiving: Thanksgiving and the weekend are skipped.
    opened = datetime(2026, 11, 25, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    due = Calendars().sla_due(us.entity_id, 48, opened)
    assert due.astimezone(ZoneInfo("America/New_York")).isoformat() == "2026-12-03T17:00:00-05:00"

    us.time_zone = "America/Chicago"
    us.save()
    AlertRule.objects.filter(name="ERP down for 5 minutes").update(minutes=15)
    call_command("setup_demo", verbosity=0)
    assert BusinessCalendar.objects.get(entity__code="NW-US").time_zone == "America/Chicago"
    assert AlertRule.objects.get(name="ERP down for 5 minutes").minutes == 15
    assert AlertRule.objects.count() == 2
