"""Settings: one file, environment-driven (healthchecks style).

Embedded default: SQLite under VAR_DIR and Celery's filesystem broker -- no server needed.
Production: set DATABASE_URL (PostgreSQL, psycopg 3) and REDIS_URL.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.getenv("VAR_DIR", BASE_DIR / ".var"))


def envbool(name: str, default: str = "False") -> bool:
    return os.getenv(name, default).lower() in ("1", "true", "yes", "on")


def envint(name: str, default: int) -> int:
    return int(os.getenv(name, str(default)))


SECRET_KEY = os.getenv("SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = envbool("DEBUG")
# `manage.py sandbox` runs fake vendor systems: only for development, tests and the demo.
SANDBOXES_ALLOWED = DEBUG or envbool("SANDBOXES_ALLOWED")
ALLOWED_HOSTS = os.getenv("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in os.getenv("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "workbench",
    "sync",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "workbench.web.middleware.NulFreeInputMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Everything needs a login except views marked @login_not_required (login, healthz, API: DRF decides).
    "workbench.web.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "workbench.web.urls"
WSGI_APPLICATION = "workbench.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

# --- database -----------------------------------------------------------------------------
if os.getenv("DATABASE_URL"):
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.getenv("SQLITE_PATH", str(VAR_DIR / "workbench.sqlite3")),
            # Web, worker and beat share the file: WAL lets readers run beside one writer, and
            # IMMEDIATE transactions wait for the write lock instead of failing mid-transaction.
            # https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-init-command
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = []  # demo logins are analyst/analyst; production uses SSO in front
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve straight from app folders; collectstatic is optional

# --- API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an anonymous call gets 401 with a WWW-Authenticate header, not a bare 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Finance Exception Workbench API",
    "DESCRIPTION": "Exceptions, documents and the actions that fix them.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the sidecar package: the docs page works with no internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "kind" and a "status": name their enums apart in the schema.
    "ENUM_NAME_OVERRIDES": {
        "DocumentKindEnum": "workbench.models.documents.Document.Kind",
        "ExceptionKindEnum": "workbench.models.exceptions.ExceptionItem.Kind",
        "ExceptionStatusEnum": "workbench.models.exceptions.Status",
        "FinancialStatusEnum": "workbench.models.documents.Document.FinancialStatus",
        "BusinessStatusEnum": "workbench.models.documents.Document.BusinessStatus",
    },
}

# --- Celery -------------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
REDIS_URL = os.getenv("REDIS_URL", "")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Redis gives a task a dead worker took back after this long; tasks are idempotent and claim their
    # work in the database, so a redelivery is safe, and it must outlast the longest task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": envint("BROKER_VISIBILITY_TIMEOUT", 1800)}
else:
    # The embedded broker (sync/broker.py): a folder, atomic renames and flocks, no server. The
    # hostname is only there so that kombu does not warn about a missing one.
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT = "sync.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "folder": str(VAR_DIR / "broker"),
        "polling_interval": 0.1,  # seconds between looks at the folder when it is empty
    }
    # No fanout traffic: remote control (inspect, ping) and events need a broadcast the folder does not need.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_TASK_ACKS_LATE = True  # a task killed mid-way is redelivered; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True  # progress lives in SyncRun rows, not a result backend
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER")
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- the product's own knobs -----------------------------------------------------------------
SYNC_MAX_ATTEMPTS = envint("SYNC_MAX_ATTEMPTS", 8)  # outbox attempts before a write is dead
SYNC_OUTAGE_THRESHOLD = envint("SYNC_OUTAGE_THRESHOLD", 8)  # consecutive transient failures = outage
SYNC_BACKOFF_BASE = float(os.getenv("SYNC_BACKOFF_BASE", "2"))  # seconds; doubled per attempt
SYNC_BACKOFF_CAP = float(os.getenv("SYNC_BACKOFF_CAP", "300"))
WORKER_STALL_SECONDS = envint("WORKER_STALL_SECONDS", 120)  # work waiting this long with no task taken = stalled
SYNC_LEASE_SECONDS = envint(
    "SYNC_LEASE_SECONDS", 300
)  # a claimed write is one worker's this long (> a write's timeouts)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# The queue's covering index (exception_active_by_group) INCLUDEs columns on PostgreSQL; the embedded
# SQLite keeps it as a plain partial index, which is all a demo needs.
SILENCED_SYSTEM_CHECKS = ["models.W040"]
