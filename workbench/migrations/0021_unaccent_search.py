"""Accent-insensitive search: PostgreSQL's unaccent extension, and the queue's search column re-folded.

unaccent is a trusted extension (PostgreSQL >= 13): the database owner may create it. SQLite gets
the same function from workbench.search at connect time.
"""

from django.db import migrations

from workbench.search import fold


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    ExceptionItem = apps.get_model("workbench", "ExceptionItem")
    batch = []
    for pk, text in ExceptionItem.objects.values_list("pk", "search").iterator(chunk_size=2000):
        folded = fold(text)
        if folded != text:
            batch.append(ExceptionItem(pk=pk, search=folded))
        if len(batch) >= 1000:
            ExceptionItem.objects.bulk_update(batch, ["search"])
            batch = []
    ExceptionItem.objects.bulk_update(batch, ["search"])


class Migration(migrations.Migration):
    dependencies = [("workbench", "0020_invoice_due_dates")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
