"""One settings module for every environment.

Everything production needs comes from environment variables; the defaults are the
embedded setup (SQLite file, tasks run in-process) so a newcomer needs no server.
"""

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    """The variable's value; unset or empty (as a copied `.env` file leaves it) means the default."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_int(name: str, default: int) -> int:
    value = env(name)
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if not value:
        return default
    return value.lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", default=True)

SECRET_KEY = env("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Development only: a fixed key so sessions survive restarts of `make run`.
    SECRET_KEY = "dev-insecure-cvm-cockpit-key-change-me-in-production-0123456789"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "cvm.apps.CockpitAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "simple_history",
    "axes",
    "core",
    "customers",
    "services",
    "valuation",
    "cockpit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outside the rest, so it turns every HTML error page under /api/ into JSON.
    "core.middleware.ApiJsonErrors",
    "cvm.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns lockouts into the locked-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "cvm.urls"
WSGI_APPLICATION = "cvm.wsgi.application"

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
                "django.template.context_processors.i18n",
                "cockpit.context_processors.cockpit",
            ],
        },
    },
]

# Embedded default: a SQLite file next to the code. DATABASE_URL switches to PostgreSQL.
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{env('SQLITE_PATH', str(BASE_DIR / 'db.sqlite3'))}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets the page read while the nightly run writes.
    DATABASES["default"]["OPTIONS"] = {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 20}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # SQLite has no INCLUDE columns: the survey answers' and the transactions' covering indexes
    # are plain indexes there, and Django warns so (models.W040) on every migrate and check.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if env_bool("FAST_PASSWORD_HASHER"):
    # Tests only: PBKDF2 costs ~0.5 s per login on this hardware.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "customers.backends.RolePermissionBackend",
]
# Login throttling: 5 failed logins for one username from one address lock it for 15 minutes.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env_int("AXES_PROXY_COUNT", 0) or None

# Password-reset mails: printed to the console unless an SMTP server is configured.
EMAIL_HOST = env("EMAIL_HOST")
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", not EMAIL_USE_SSL)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "cvm-cockpit@localhost")
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3 * 24 * 3600)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("de", _("German"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The header's language switcher stores the choice in this cookie; without one, the browser's
# Accept-Language decides. A year, so the choice survives closing the browser.
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = not DEBUG
TIME_ZONE = env("TIME_ZONE", "Europe/Berlin")
USE_I18N = True
USE_TZ = True

# One cache shared by web processes and workers (a table in the database, so it needs no
# extra server and survives a Redis outage): the nightly run warms the dashboard in it.
# The shared cache of every web process (dashboard figures, API rate-limit counts): a table of
# the database by default; Redis with CVM_CACHE_URL (the compose file sets it), which spares the
# database a write on every API request.
CVM_CACHE_URL = env("CVM_CACHE_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CVM_CACHE_URL, "KEY_PREFIX": "cvm"}
        if CVM_CACHE_URL
        else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "cvm_cache",
              "OPTIONS": {"MAX_ENTRIES": 5000}}
    )
}

# The company's currency: every money amount in the database is in this currency.
CVM_CURRENCY = env("CVM_CURRENCY", "EUR")
# The letterhead of the value statement (PDF and print): the company that gives the services.
# Address lines are separated by "|" (one environment variable, no multi-line values).
CVM_COMPANY_NAME = env("CVM_COMPANY_NAME", "Your Company GmbH")
CVM_COMPANY_ADDRESS = [
    line.strip() for line in env("CVM_COMPANY_ADDRESS", "Musterstraße 1|12345 Musterstadt").split("|") if line.strip()
]
CVM_COMPANY_CONTACT = env("CVM_COMPANY_CONTACT", "")

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Development serves straight from static/; production from collectstatic's output.
WHITENOISE_USE_FINDERS = DEBUG
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded files (the import page's checked file, kept between preview and commit). With more
# than one web host, point CVM_MEDIA_ROOT at a folder they all share, or give the "imports"
# storage another backend (an object store): the pages use it only through the storage API.
MEDIA_ROOT = Path(env("CVM_MEDIA_ROOT", str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "imports": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT / "imports", "file_permissions_mode": 0o600, "directory_permissions_mode": 0o700},
    },
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Request bodies: a bulk API request of 50,000 rows with short notes is ~8.5 MB of JSON, so the
# limit is 20 MB (Django's 2.5 MB default refused the documented maximum). Uploaded files are
# limited separately (CVM_IMPORT_MAX_MB).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("CVM_MAX_REQUEST_MB", 20) * 1024 * 1024

# The upload page checks a file inside the web request: files up to this size, and a check that
# stops with a clear message after this many seconds (below gunicorn's 60 s timeout). Larger
# files go through the import_csv command, which has neither limit.
CVM_IMPORT_UPLOAD_MAX_MB = env_int("CVM_IMPORT_UPLOAD_MAX_MB", 20)
CVM_IMPORT_PAGE_SECONDS = env_int("CVM_IMPORT_PAGE_SECONDS", 40)

# API rate limits, counted in the shared cache: requests per token (or session user), and wrong
# keys per address.
CVM_API_THROTTLE_RATES = {
    "token": env("CVM_API_RATE_TOKEN", "1200/min"),
    "address": env("CVM_API_RATE_ADDRESS", "20/min"),
}

# The API lists' `count`: exact on every request for lists of up to this many rows; a longer
# list's count is kept in the shared cache for this many seconds (it may lag behind writes).
CVM_API_EXACT_COUNT_UP_TO = env_int("CVM_API_EXACT_COUNT_UP_TO", 10_000)
CVM_API_COUNT_CACHE_SECONDS = env_int("CVM_API_COUNT_CACHE_SECONDS", 60)

REST_FRAMEWORK = {
    # Token first, so an anonymous request (API root, schema, docs included) answers 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "customers.tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.TokenRateThrottle"],
    "EXCEPTION_HANDLER": "core.api.api_exception_handler",
    "NUM_PROXIES": env_int("CVM_PROXY_COUNT", 0) or None,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated", "customers.access.HasRole"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CVM Cockpit API",
    "VERSION": "1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated", "customers.access.HasRole"],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
}

# Celery: with REDIS_URL unset, tasks run in-process (the embedded default).
REDIS_URL = env("REDIS_URL", "")
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_IGNORE_RESULT = True  # results live in the database (ValuationRun)
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Fail fast when Redis is down or hanging instead of blocking a page for minutes.
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 0}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
    # Longer than the longest chunk, so a healthy chunk is never delivered twice.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 900),
}
CELERY_REDIS_SOCKET_TIMEOUT = 2
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 1

CVM_NIGHTLY_HOUR = env_int("CVM_NIGHTLY_HOUR", 2)
CVM_NIGHTLY_MINUTE = env_int("CVM_NIGHTLY_MINUTE", 0)
CELERY_BEAT_SCHEDULE = {
    # The nightly run starts at the set time; the later ticks of the same day are no-ops once
    # it completed, and catch up when the broker or a worker was down at that time.
    "nightly-valuation": {
        "task": "valuation.tasks.nightly_valuation",
        "schedule": crontab(minute=f"{CVM_NIGHTLY_MINUTE}-59/15", hour=f"{CVM_NIGHTLY_HOUR}-23"),
    },
}

# Valuation defaults; a manager can override them in the settings page.
CVM_VALUATION_CHUNK_SIZE = env_int("CVM_VALUATION_CHUNK_SIZE", 50000)
# The one staleness limit: a run or chunk whose heartbeat is older than this lost its process.
# The next "recompute" takes such a run over, and the next beat tick queues its chunks again
# (Redis would redeliver only after its visibility timeout). Holders beat 6 times within it.
CVM_RUN_STALE_SECONDS = env_int("CVM_RUN_STALE_SECONDS", 120)
CVM_VALUATION_RETENTION_DAYS = env_int("CVM_VALUATION_RETENTION_DAYS", 730)
# Value history thinning (valuation/history.py): every run of the last N days is kept, older
# runs only as month-end snapshots; the newest M completed runs keep every list index.
CVM_VALUATION_DAILY_DAYS = env_int("CVM_VALUATION_DAILY_DAYS", 90)
CVM_VALUATION_FULL_INDEX_RUNS = max(1, env_int("CVM_VALUATION_FULL_INDEX_RUNS", 2))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler and the root's would print each django line twice
        # ("Watching for file changes" in `make run`, every request error in production).
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        # WeasyPrint reports every step of a PDF at INFO
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# Scripts and styles only from our own static files; charts draw from JSON, never inline code.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    # plotly sets style attributes and <style> elements at run time
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data: blob:",
    "font-src": "'self' data:",
    "worker-src": "'self' blob:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

# Production hardening, active when DEBUG is off (behind a TLS-terminating proxy).
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
