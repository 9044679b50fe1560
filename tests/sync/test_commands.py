"""Management commands that start fake vendor systems stay out of production."""

import pytest
from django.core.management import CommandError, call_command


def test_a_sandbox_refuses_to_start_where_sandboxes_are_not_allowed(settings):
    settings.SANDBOXES_ALLOWED = False
    with pytest.raises(CommandError, match="SANDBOXES_ALLOWED"):
        call_command("sandbox", "concur", "--port", "0")
