"""Settings: one file, environment-driven (healthchecks style).

Embedded default: SQLite under VAR_DIR and Celery's filesystem broker -- no server needed.
Production: set DATABASE_URL (PostgreSQL, psycopg 3) and REDIS_URL.
"""

import os
from datetime import timedelta
from pathlib import Path

from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.getenv("VAR_DIR", BASE_DIR / ".var"))


def envbool(name: str, default: str = "False") -> bool:
    return os.getenv(name, default).lower() in ("1", "true", "yes", "on")


def envint(name: str, default: int) -> int:
    return int(os.getenv(name, str(default)))


DEBUG = envbool("DEBUG")
# Production mode (PRODUCTION=1 or DJANGO_ENV=production, and DEBUG off): HTTPS only, secure cookies, HSTS
# (see "security" below), and no start without a real SECRET_KEY. `manage.py check --deploy` is clean then.
PRODUCTION = not DEBUG and (envbool("PRODUCTION") or os.getenv("DJANGO_ENV", "").lower() == "production")
SECRET_KEY = os.getenv("SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("Set SECRET_KEY (50+ random characters): it is required in production.")
    SECRET_KEY = "dev-only-insecure-key-change-me"
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
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "axes",  # login throttling and lockout (see "accounts" below)
    "csp",  # Content-Security-Policy (see "security" below); the app brings its system checks
    "workbench",
    "workbench.web.apps.WebConfig",  # screens and API: connects the session-timeout login stamp
    "sync",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "workbench.web.middleware.NulFreeInputMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Idle and absolute session timeouts (SESSION_IDLE_SECONDS, SESSION_COOKIE_AGE): logged out before the login check.
    "workbench.web.middleware.SessionTimeoutMiddleware",
    # Everything needs a login except views marked @login_not_required (login, healthz, API: DRF decides).
    "workbench.web.middleware.LoginRequiredMiddleware",
    # Role check for every screen and HTMX endpoint from one table (workbench/web/access.py).
    "workbench.web.access.AccessMiddleware",
    "workbench.web.middleware.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lockout flagged during authenticate() into the lockout page.
    "axes.middleware.AxesMiddleware",
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

# --- accounts -------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/auth/passwords/#enabling-password-validation
# Every password set through a form is checked; the demo logins (analyst/analyst) are set with
# set_password() by setup_demo, which checks nothing.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Login throttling with django-axes: LOGIN_FAILURE_LIMIT wrong passwords for one username from one address
# lock that pair out for LOGIN_COOLOFF_MINUTES (a wrong try while locked starts the wait again); other users
# and other addresses log in as usual. Attempts live in the database, so every web process sees them.
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out pair before any password check
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
LOGIN_COOLOFF_MINUTES = envint("LOGIN_COOLOFF_MINUTES", 15)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a successful login forgets the earlier failures
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"  # answered with 429 Too Many Requests
AXES_VERBOSE = False  # no banner on every manage.py start; failures and lockouts are still logged
# Token and session calls to the API never go through authenticate(): DRF's throttles cover the API.

# Session lifetime: logged out SESSION_IDLE_SECONDS after the last request, and SESSION_COOKIE_AGE after
# logging in however busy the session (workbench.web.middleware.SessionTimeoutMiddleware).
SESSION_COOKIE_AGE = envint("SESSION_MAX_AGE_SECONDS", 8 * 3600)
SESSION_IDLE_SECONDS = envint("SESSION_IDLE_SECONDS", 30 * 60)

# Mail: only with EMAIL_HOST set can the workbench send mail, and only then is password reset offered
# (workbench/web/accounts_urls.py); without it users ask an administrator for a new password.
EMAIL_HOST = os.getenv("EMAIL_HOST", "")
PUBLIC_URL = os.getenv("PUBLIC_URL", "http://127.0.0.1:8000")  # links in mails and chat messages start here
PASSWORD_RESET_ENABLED = bool(EMAIL_HOST)
if EMAIL_HOST:
    EMAIL_PORT = envint("EMAIL_PORT", 587)
    EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.getenv("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_SSL = envbool("EMAIL_USE_SSL")  # implicit TLS (port 465)
    EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "True") and not EMAIL_USE_SSL  # STARTTLS (port 587)
    DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", f"workbench@{EMAIL_HOST}")
else:  # notifications and digests are printed by the worker instead (the demo's "mail")
    EMAIL_BACKEND = os.getenv("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
    DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "workbench@localhost")

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

# --- security -------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    # TLS ends at the proxy in front, which must set X-Forwarded-Proto (and drop any a client sent).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # a load balancer's health probe may speak plain HTTP
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# Content-Security-Policy (django-csp 4): no inline script anywhere. Behaviour lives in static/workbench/app.js
# (data- attributes, event delegation), base.html switches off htmx's injected indicator <style> (the rules are
# in app.css), and the API docs page loads its init script from its own URL (SpectacularSwaggerSplitView).
# https://django-csp.readthedocs.io/en/latest/configuration.html
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # Inline style *attributes* only, never <style> elements or script: a few templates set a width inline
        # (column widths, progress bars). An attribute cannot run code. Drop this once those widths are classes.
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        # Form posts stay here. A sign-in form that posts and is redirected to an identity provider needs
        # that provider's origin added (Chromium applies form-action to the redirect too).
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an anonymous call gets 401 with a WWW-Authenticate header, not a bare 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "workbench.web.api.auth.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["workbench.web.api.permissions.TablePermission"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Per user (a token counts as its user) and, for anonymous calls, per address; a view with
    # @throttle_scope("uploads") also spends the stricter uploads budget. Counts live in CACHES.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.getenv("API_THROTTLE_USER", "600/min"),
        "anon": os.getenv("API_THROTTLE_ANON", "30/min"),
        "uploads": os.getenv("API_THROTTLE_UPLOADS", "20/min"),
    },
    # Proxies in front that append to X-Forwarded-For; with 0 the address is REMOTE_ADDR, which a client
    # cannot choose (DRF's default would believe any X-Forwarded-For a client sends).
    "NUM_PROXIES": envint("NUM_PROXIES", 0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Finance Exception Workbench API",
    "DESCRIPTION": "Exceptions, documents and the actions that fix them.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["workbench.web.api.permissions.TablePermission"],
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

# --- cache --------------------------------------------------------------------------------
# Holds the API throttle counts. With REDIS_URL every process on every machine shares them (Django's own
# Redis backend). Without it, a file cache under VAR_DIR shares them between the processes of one machine
# (the demo runs two gunicorn workers), which the in-memory default would not. Login lockouts (django-axes)
# are in the database either way. Never cache.clear() on Redis: it flushes the whole database, broker included.
if os.getenv("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": "workbench",
        }
    }
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": VAR_DIR / "cache"}
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
EVIDENCE_DIR = Path(os.getenv("EVIDENCE_DIR", VAR_DIR / "evidence"))  # override evidence, named by digest
WORK_JOB_DIR = Path(os.getenv("WORK_JOB_DIR", VAR_DIR / "work-jobs"))  # files background exports produce
DIGEST_HOUR = envint("DIGEST_HOUR", 7)  # hour of day (CELERY_TIMEZONE) the daily e-mail digest goes out
if not 0 <= DIGEST_HOUR <= 23:
    raise ImproperlyConfigured(f"DIGEST_HOUR is an hour of the day, 0 to 23, not {DIGEST_HOUR}")
BULK_INLINE_MAX = envint("BULK_INLINE_MAX", 200)  # queue bulk actions on more items run in the background
# Business calendar of an entity that has none of its own (workbench/business_time.py): SLAs count
# these hours. Close timetable offsets are business days from the period's end (+ after, - before).
BUSINESS_CALENDAR_DEFAULT = {"time_zone": "UTC", "weekdays": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}
CLOSE_OFFSETS_DEFAULT = {"expense_cutoff_days": 1, "ap_cutoff_days": 3, "close_days": 5}
CLOSE_RISK_DAYS = envint("CLOSE_RISK_DAYS", 3)  # an item whose close deadline is this near is at close risk
EXPORT_BACKGROUND_ROWS = envint("EXPORT_BACKGROUND_ROWS", 20000)  # larger exports run as a background job
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
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},  # one INFO line per login is noise; lockouts are WARNING
    },
}

# The queue's covering index (exception_active_by_group) INCLUDEs columns on PostgreSQL; the embedded
# SQLite keeps it as a plain partial index, which is all a demo needs.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# --- single sign-on -----------------------------------------------------------------------
# OpenID Connect (Microsoft Entra ID; the identity sandbox in the demo) through mozilla-django-oidc, mapped to
# roles and entity scope in workbench/web/oidc.py. Off unless OIDC_RP_CLIENT_ID is set; then the login page
# offers "Sign in with Microsoft Entra ID" beside the password form (local passwords stay for the demo and one
# break-glass admin). The provider's endpoints: OIDC_OP_DISCOVERY_URL (its .well-known/openid-configuration,
# read at the first sign-in), or each one by name. https://mozilla-django-oidc.readthedocs.io/en/stable/settings.html
OIDC_RP_CLIENT_ID = os.getenv("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.getenv("OIDC_RP_CLIENT_SECRET", "")
OIDC_OP_DISCOVERY_URL = os.getenv("OIDC_OP_DISCOVERY_URL", "")
OIDC_OP_ISSUER = os.getenv("OIDC_OP_ISSUER", "")  # the ID token's iss; else the discovery document's
OIDC_OP_AUTHORIZATION_ENDPOINT = os.getenv("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.getenv("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.getenv("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.getenv("OIDC_OP_USER_ENDPOINT", "")  # unused: the verified ID token has the claims
OIDC_RP_SIGN_ALGO = "RS256"  # the ID token's signature is checked against the provider's JWKS
OIDC_RP_SCOPES = "openid profile email"
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_USE_NONCE = True
OIDC_TIMEOUT = envint("OIDC_TIMEOUT", 10)  # seconds, for every call to the provider
LOGIN_REDIRECT_URL_FAILURE = LOGIN_URL  # a refused sign-in lands on the login page with a message
if OIDC_RP_CLIENT_ID and not OIDC_RP_CLIENT_SECRET:
    raise ImproperlyConfigured("OIDC_RP_CLIENT_ID is set: set OIDC_RP_CLIENT_SECRET too.")
if OIDC_RP_CLIENT_ID and not (
    OIDC_OP_DISCOVERY_URL or (OIDC_OP_AUTHORIZATION_ENDPOINT and OIDC_OP_TOKEN_ENDPOINT and OIDC_OP_JWKS_ENDPOINT)
):
    raise ImproperlyConfigured(
        "OIDC_RP_CLIENT_ID is set: set OIDC_OP_DISCOVERY_URL, or OIDC_OP_AUTHORIZATION_ENDPOINT, "
        "OIDC_OP_TOKEN_ENDPOINT and OIDC_OP_JWKS_ENDPOINT."
    )
# Always installed: it signs no one in while single sign-on is off, and turns deactivated accounts away.
AUTHENTICATION_BACKENDS = [*AUTHENTICATION_BACKENDS, "workbench.web.oidc.EntraIdBackend"]
TEMPLATES[0]["OPTIONS"]["context_processors"].append("workbench.web.oidc.sso")  # sso_enabled, for the login page
