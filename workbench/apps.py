from django.apps import AppConfig
from django.db import connections
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate

from workbench.search import register_sqlite_unaccent


def _after_migrate(sender, using="default", **kwargs):
    # Imported here: models (and so these modules) can only load once the app registry is ready.
    from workbench.models.guards import install
    from workbench.roles import roles_sync

    roles_sync()  # permissions exist only after migrate (post_migrate creates them)
    install(connections[using])  # re-installed each time: an SQLite table rebuild drops its triggers


class WorkbenchConfig(AppConfig):
    name = "workbench"
    verbose_name = "Workbench"

    def ready(self):
        from workbench.services.audit import signals_connect

        post_migrate.connect(_after_migrate, sender=self)
        connection_created.connect(register_sqlite_unaccent)
        signals_connect()
