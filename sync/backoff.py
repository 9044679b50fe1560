"""Exponential backoff with jitter that honours Retry-After."""

import random

from django.conf import settings


def delay_for(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 1)."""
    base = settings.SYNC_BACKOFF_BASE * (2 ** max(0, attempt - 1))
    delay = min(settings.SYNC_BACKOFF_CAP, base) * random.uniform(0.8, 1.2)
    if retry_after is not None:
        delay = max(delay, retry_after)  # the vendor said when; never earlier
    return delay
