from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Sync"

    def ready(self):
        # Connects the workers' heartbeat to Celery's task signals (Django's place for receivers).
        from sync import workers  # noqa: F401
