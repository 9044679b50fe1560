"""Sync: the Celery app, cursors, runs, the outbox, and the tasks that move documents."""

from .celery import app as celery_app

__all__ = ("celery_app",)
