"""The outbox row (sync_outboundwrite) is now a domain model: state only, no table change."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workbench", "0009_queue_groups_index"),
        ("sync", "0006_outbox_moves_to_the_domain"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="OutboundWrite",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("run_id", models.BigIntegerField(blank=True, null=True, help_text="The sync run that queued it, so a run can show what it got posted.")),
                        ("action", models.CharField(max_length=40)),
                        ("idempotency_key", models.CharField(max_length=200, unique=True)),
                        ("payload", models.JSONField()),
                        ("status", models.CharField(choices=[("pending", "Pending"), ("sending", "Sending"), ("done", "Done"), ("rejected", "Rejected"), ("dead", "Dead")], default="pending", max_length=10)),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("next_attempt_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("lease_until", models.DateTimeField(blank=True, null=True)),
                        ("uncertain", models.BooleanField(default=False, help_text="A previous attempt may have reached the vendor.")),
                        ("last_error", models.TextField(blank=True)),
                        ("result", models.JSONField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        ("connection", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="writes", to="workbench.connection")),
                        ("document", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="writes", to="workbench.document")),
                    ],
                    options={
                        "db_table": "sync_outboundwrite",
                        "ordering": ["id"],
                        "indexes": [models.Index(fields=["status", "next_attempt_at"], name="sync_outbou_status_0d0012_idx")],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
