"""Bench harness: Django on a throwaway test database (PostgreSQL when DATABASE_URL is set)."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
os.environ.setdefault("SANDBOXES_ALLOWED", "1")  # benchmarks run the vendor sandboxes as processes


def django_with_fresh_db(keepdb: bool = False):
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    # serialize=False: with --keepdb, Django would otherwise load the whole kept database into memory.
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=keepdb, serialize=False)
    return connection, name


def teardown(connection, name):
    connection.creation.destroy_test_db(name, verbosity=0)


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
