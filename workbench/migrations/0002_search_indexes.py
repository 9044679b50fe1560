"""Trigram indexes for the queue's free-text search (PostgreSQL only; SQLite scans, which is fine there).

The queue searches `ExceptionItem.search` (lower-case) with `LIKE '%v%'`. pg_trgm is a trusted extension (PostgreSQL >= 13): the database owner may create it.
"""

from django.db import migrations

INDEXES = [("workbench_exceptionitem", "search", "exception_search_trgm")]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table, column, name in INDEXES:
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ("{column}" gin_trgm_ops)')


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for _, _, name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("workbench", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
