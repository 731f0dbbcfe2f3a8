"""Settings for Lifecycle CRM, read from the environment (see README, "Configuration").

With nothing set, the app runs on an embedded default: SQLite, Celery tasks run in a background
thread of the web process (TASK_RUNNER), e-mail written to files in dev-email/ while DEBUG is on.
Production sets DATABASE_URL, REDIS_URL, SECRET_KEY, ALLOWED_HOSTS, EMAIL_URL and DEBUG=false; the
hardening below switches on with DEBUG off.
"""

from decimal import Decimal
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

DEBUG = env.bool("DEBUG", default=False)
# A development key is only acceptable while DEBUG is on; production must provide its own.
SECRET_KEY = env("SECRET_KEY") if not DEBUG else env("SECRET_KEY", default="dev-only-insecure-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

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
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "axes",
    "csp",
    "core",
    "customers",
    "lifecycle",
    "portal",
    "messaging",
    "feedback",
    "loyalty",
    "referrals",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Axes must come last: it turns a lockout into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.roles",
                "core.context_processors.navigation",
                "portal.context_processors.portal",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the background jobs (TASK_RUNNER "thread") write while pages read.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = "PRAGMA journal_mode=WAL;"
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    # The background thread that runs jobs without a broker writes while requests do: wait for the
    # lock rather than fail at once (a chunk of an import holds it for a few seconds at most).
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 30)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# Failed logins: lock the (username, IP) pair after 5 failures for an hour.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Proxies of our own in front of the app (0: clients connect directly). Every per-client count (this
# lockout, the portal's limits, the API throttles) takes the client's address by this one rule:
# core.client_ip. axes' own AXES_IPWARE_* settings need django-ipware, which this project does not use.
CLIENT_IP_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "core.client_ip.client_ip"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Our number formats per language (config/formats/): Chinese groups thousands too.
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "media/"
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# The largest CSV the import page accepts (the command line has no limit).
IMPORT_MAX_UPLOAD_BYTES = env.int("IMPORT_MAX_UPLOAD_MB", default=100) * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024

# Development (DEBUG) with no EMAIL_URL writes each delivery batch of e-mail to a file in dev-email/
# (git-ignored) instead of printing it: beat's daily retention run on the demo data sends hundreds,
# which buried the server's log. Deployments set EMAIL_URL; unset there, e-mail goes to the console.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="filemail://" if DEBUG else "consolemail://")
if EMAIL_CONFIG["EMAIL_BACKEND"].endswith(".filebased.EmailBackend") and not EMAIL_CONFIG["EMAIL_FILE_PATH"]:
    EMAIL_CONFIG["EMAIL_FILE_PATH"] = str(BASE_DIR / "dev-email")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Lifecycle CRM <crm@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Who gets mail_admins() alerts (e.g. the outbox pausing itself): comma-separated addresses.
ADMINS = [(address, address) for address in env.list("ADMINS", default=[])]

# The shop's currency for new orders and reports; orders keep their own currency.
DEFAULT_CURRENCY = env("DEFAULT_CURRENCY", default="USD")

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
# Where enqueued tasks run (core/background.py): "celery" sends them to the broker's workers;
# without a broker there is no worker, and "thread" runs them in a background thread of the web
# process after the request's transaction commits (the request answers at once, the job page shows
# progress); "eager" runs them at once in the caller (tests).
TASK_RUNNER = env.str(
    "TASK_RUNNER", default="celery" if (REDIS_URL or env("CELERY_BROKER_URL", default="")) else "thread"
)
if TASK_RUNNER not in ("celery", "thread", "eager"):
    raise ImproperlyConfigured(f"TASK_RUNNER must be celery, thread or eager, not {TASK_RUNNER!r}")
# Jobs running at once in the background threads; more wait as "queued".
BACKGROUND_THREADS = env.int("BACKGROUND_THREADS", default=2)
# In-process runners: Celery runs a task inline when asked (a thread runs it, or the caller).
CELERY_TASK_ALWAYS_EAGER = TASK_RUNNER != "celery"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The queue tasks go to (a worker's -Q); tests give their worker a queue of its own.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- Customer value (CLV) job --------------------------------------------------------------------
# Customers per scoring task, and database connections that read the orders side by side (about
# one per core of the database server).
# Feedback: nobody is invited to a survey twice within this many days (across every survey); a
# detractor's follow-up task is due this many hours after the answer.
FEEDBACK_CONTACT_LIMIT_DAYS = env.int("FEEDBACK_CONTACT_LIMIT_DAYS", default=30)
FEEDBACK_DETRACTOR_SLA_HOURS = env.int("FEEDBACK_DETRACTOR_SLA_HOURS", default=48)
# The health score's feedback part reads the survey answers of this many days.
FEEDBACK_HEALTH_DAYS = env.int("FEEDBACK_HEALTH_DAYS", default=365)
CLV_CHUNK_SIZE = env.int("CLV_CHUNK_SIZE", default=100_000)
CLV_AGGREGATE_CONNECTIONS = env.int("CLV_AGGREGATE_CONNECTIONS", default=2)
# The models of a new run (each run keeps its own copy): the BG/NBD time unit ("week" or "day"),
# the predicted CLV's horizon, the annual discount rate of that horizon, and the days without a
# paid order after which a buyer counts as churned (the formula CLV's lifespan).
CLV_TIME_UNIT = env("CLV_TIME_UNIT", default="week")
if CLV_TIME_UNIT not in ("week", "day"):
    raise ImproperlyConfigured(f"CLV_TIME_UNIT must be 'week' or 'day', not {CLV_TIME_UNIT!r}")
CLV_HORIZON_MONTHS = env.int("CLV_HORIZON_MONTHS", default=12)
CLV_ANNUAL_DISCOUNT_RATE = Decimal(env("CLV_ANNUAL_DISCOUNT_RATE", default="0.10"))
CLV_CHURN_DAYS = env.int("CLV_CHURN_DAYS", default=365)

# --- Customer portal (/portal/) -------------------------------------------------------------------
# A login link works once, for this many minutes. Requests for links are limited per address and per
# client address ("N/period", period s, m, h or d; the client address by core.client_ip).
PORTAL_LOGIN_LINK_MINUTES = env.int("PORTAL_LOGIN_LINK_MINUTES", default=10)
PORTAL_LOGIN_RATE_PER_EMAIL = env("PORTAL_LOGIN_RATE_PER_EMAIL", default="5/h")
PORTAL_LOGIN_RATE_PER_IP = env("PORTAL_LOGIN_RATE_PER_IP", default="30/h")
# Sign-ups through a referral share link (/r/<code>/) per client address, counted like the above.
REFERRAL_SIGNUP_RATE_PER_IP = env("REFERRAL_SIGNUP_RATE_PER_IP", default="20/h")
# How long a customer's portal session lasts.
PORTAL_SESSION_SECONDS = env.int("PORTAL_SESSION_HOURS", default=24) * 3600

# --- Outbox (messaging): every e-mail to a customer ------------------------------------------------
# Messages one delivery batch claims (one SMTP connection each), and how long the claim holds: a
# worker killed mid-batch leaves its messages to others once the lease ends.
MESSAGING_BATCH_SIZE = env.int("MESSAGING_BATCH_SIZE", default=200)
MESSAGING_LEASE_SECONDS = env.int("MESSAGING_LEASE_SECONDS", default=300)
# Transient failures (4xx, connection errors) retry after base x 2^(attempt-1) seconds, at most
# MESSAGING_RETRY_MAX_SECONDS apart, and fail for good after MESSAGING_MAX_ATTEMPTS attempts.
MESSAGING_MAX_ATTEMPTS = env.int("MESSAGING_MAX_ATTEMPTS", default=8)
MESSAGING_RETRY_BASE_SECONDS = env.float("MESSAGING_RETRY_BASE_SECONDS", default=60.0)
MESSAGING_RETRY_MAX_SECONDS = env.float("MESSAGING_RETRY_MAX_SECONDS", default=3600.0)
# How long one delivery task keeps claiming batches before it leaves the rest to the next run.
MESSAGING_RUN_SECONDS = env.float("MESSAGING_RUN_SECONDS", default=50.0)
# Marketing mail pauses itself (and mails ADMINS) when, over the last 24 hours and at least
# MESSAGING_PAUSE_MIN_MESSAGES messages, permanent failures or unsubscribes pass these shares.
MESSAGING_PAUSE_FAILURE_RATE = env.float("MESSAGING_PAUSE_FAILURE_RATE", default=0.05)
MESSAGING_PAUSE_UNSUBSCRIBE_RATE = env.float("MESSAGING_PAUSE_UNSUBSCRIBE_RATE", default=0.02)
MESSAGING_PAUSE_MIN_MESSAGES = env.int("MESSAGING_PAUSE_MIN_MESSAGES", default=100)
# A mailbox whose mail the deployment processes as unsubscribe requests; only then does
# List-Unsubscribe carry a mailto: beside the https link.
MESSAGING_UNSUBSCRIBE_MAILTO = env("MESSAGING_UNSUBSCRIBE_MAILTO", default="")

# --- REST API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an anonymous request then gets 401 with "WWW-Authenticate: Token", not a bare 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.permissions.StaffRolePermission"],
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.IdCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "auth": env("API_AUTH_THROTTLE", default="20/min"),
        "survey_answer": env("API_SURVEY_ANSWER_THROTTLE", default="60/min"),
    },
    # Throttles key on the client IP: trust X-Forwarded-For only as far as our own proxies (core.client_ip),
    # or a client could dodge the login throttle by sending a new X-Forwarded-For each time.
    "NUM_PROXIES": CLIENT_IP_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lifecycle CRM API",
    "DESCRIPTION": "Customers, orders, activity events and acquisition channels.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "customers.models.Order.Status",
        "ChannelStatusEnum": "customers.models.AcquisitionChannel.Status",
        "LifecycleStageEnum": "lifecycle.models_stages.Stage",
        "LedgerEntryKindEnum": "loyalty.models.LedgerEntry.Kind",
        "SurveyKindEnum": "feedback.models.Survey.Kind",
        "ReferralStateEnum": "referrals.models.Referral.State",
        "ReferralSourceEnum": "referrals.models.Referral.Source",
        "ReferralRewardStateEnum": "referrals.models.Reward.State",
    },
}

# --- Content Security Policy: our own static files only, no inline script. ------------------------
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}

# --- Production hardening (DEBUG off) -----------------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
    SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"require_debug_false": {"()": "django.utils.log.RequireDebugFalse"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "mail_admins": {"level": "ERROR", "filters": ["require_debug_false"], "class": "django.utils.log.AdminEmailHandler"},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},
        # Django's own "django" logger has a console handler in debug; letting it propagate to the
        # root's console too printed every 403's and 404's record (with its traceback) twice.
        "django": {"handlers": ["console", "mail_admins"], "level": "INFO", "propagate": False},
    },
}
