"""Re-read the ERP streams that gained copied fields in this release (GL accounts: account type and
direct posting; payment terms: discount date formula; vendors: payment terms code).

An incremental read only sees rows changed since its cursor, so without this an existing install
would keep the migration's defaults until each row happened to change in the ERP. Clearing the
cursor makes the next pull read those streams in full, once.
"""

from django.db import migrations

STREAMS = ["gl_accounts", "payment_terms", "suppliers"]


def reset(apps, schema_editor):
    apps.get_model("sync", "SyncCursor").objects.filter(stream__in=STREAMS, connection__role="erp").update(value=None)


class Migration(migrations.Migration):
    dependencies = [("sync", "0007_drift_work"), ("workbench", "0021_unaccent_search")]
    operations = [migrations.RunPython(reset, migrations.RunPython.noop)]
