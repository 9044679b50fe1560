"""The outbox row becomes a domain model (workbench.OutboundWrite); its table stays where it is.

Its link to the sync run that queued it becomes a plain id (the domain does not point at sync's
tables), so the foreign-key constraint goes; the column and its values stay."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0005_worker_beat"),
        ("workbench", "0009_queue_groups_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="outboundwrite",
            name="run",
            field=models.BigIntegerField(blank=True, null=True, db_column="run_id"),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="OutboundWrite")],
            database_operations=[],
        ),
    ]
