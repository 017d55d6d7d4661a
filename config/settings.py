"""All settings, read from environment variables (12-factor). This is the only settings module.

Defaults give the embedded setup: a SQLite file and a filesystem Celery broker under `var/`, so the
platform runs with no server. Set DATABASE_URL and CELERY_BROKER_URL for PostgreSQL and Redis (or
RabbitMQ). See the README's "Configuration" table for every variable.
"""

from datetime import timedelta
from pathlib import Path

import environ
import structlog
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# Local state: the SQLite file, the filesystem broker, imports in progress, reward models.
# Nothing is created here: importing settings touches no disk; config.apps creates the folders
# when Django starts.
VAR_DIR = Path(env("VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            "(or DEBUG=1 for a local development key)."
        )
    # Development only: the key scripts/run.sh keeps under var/, so that sessions survive
    # restarts; without that file, a new random key for this process.
    _key_file = VAR_DIR / "dev-secret-key"
    if _key_file.exists():
        SECRET_KEY = _key_file.read_text().strip()
    else:
        from django.core.management.utils import get_random_secret_key

        SECRET_KEY = get_random_secret_key()

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "csp",
    "axes",
    "django_structlog",
    "config.apps.PlatformConfig",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "annotator",
    "scoring",
    "routing",
]

MIDDLEWARE = [
    # First: probes skip host checks, the https redirect and request logging (config/health.py).
    "config.health.HealthProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Permissions-Policy on every response, no-store on personal ones (config/headers.py).
    "config.headers.ResponseHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A request id on every log line of a request (and its Celery tasks), and in the response.
    "django_structlog.middlewares.RequestMiddleware",
    "config.request_id.RequestIdHeaderMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: it turns a lockout flagged during the view into a response.
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
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that tests can share the test database with child processes
    # (the command line, a real Celery worker).
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    # WAL + a busy timeout let the web process and the worker share the file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # Seconds; an unreachable server fails a request (or /readyz) instead of hanging on TCP.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=5)
    )

# Per-process memory by default; CACHE_URL=redis://... shares it between web processes.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# Sessions stay in the database (they survive restarts) and are read through the cache.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# WhiteNoise serves static files from the app server. Images run collectstatic at build time and
# set STATIC_MANIFEST=1: hashed, compressed files cached for a year. Without it (development,
# tests, a plain checkout) it serves the source folders as they are.
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=False)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST

# The site's own login (annotators are not staff, so the admin's login would refuse them).
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# ============================================================================================
# --- Security ---
# Headers that cost nothing in development either.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = env("SECURE_REFERRER_POLICY", default="same-origin")
# The browser features no page of the site uses, turned off (config/headers.py); empty: no header.
PERMISSIONS_POLICY = env(
    "PERMISSIONS_POLICY",
    # Only features Chromium knows: an unknown one is a console warning on every page.
    default="camera=(), microphone=(), geolocation=(), payment=(), usb=()",
)
# Every response under this path is personal (token or session): never cached.
API_PATH_PREFIX = "/api/"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# Behind a proxy or load balancer that terminates TLS: trust its X-Forwarded-Proto (it must set
# it, overwriting what clients send), redirect plain http to https and send HSTS. Each switch
# can also be set on its own. Production web processes also need ALLOWED_HOSTS (config/wsgi.py).
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=BEHIND_TLS_PROXY)
SECURE_HSTS_SECONDS = env.int(
    "SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if BEHIND_TLS_PROXY else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# The preload directive alone changes nothing; browsers preload a site only once it is submitted.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)

# Content-Security-Policy (django-csp 4 format). Pages show untrusted LLM text, so the browser
# runs only our own script files: no inline scripts or handlers, no eval (htmx is configured
# through a <meta> tag, and its eval features are off), no inline styles, nothing from elsewhere.
_csp_directives = {
    "default-src": [SELF],
    "script-src": [SELF],
    "style-src": [SELF],
    "img-src": [SELF],
    "font-src": [SELF],
    "connect-src": [SELF],
    "object-src": [NONE],
    "base-uri": [NONE],
    "form-action": [SELF],
    "frame-ancestors": [NONE],
}
# Not a CSP_* setting: django-csp 4 rejects those as its old configuration format.
_csp_report_uri = env("CSP_REPORT_URI", default="")
if _csp_report_uri:
    _csp_directives["report-uri"] = [_csp_report_uri]
CONTENT_SECURITY_POLICY = {"DIRECTIVES": _csp_directives}

# Login throttling (django-axes): after AXES_FAILURE_LIMIT failed logins for one username from one
# IP address, that pair is refused for AXES_COOLOFF_MINUTES (a failure meanwhile restarts the
# wait). Per username *and* address, so that annotators behind one NAT or proxy cannot lock each
# other out, and nobody can lock a user out from elsewhere. `manage.py axes_reset` unlocks.
AUTHENTICATION_BACKENDS = [
    # First, so that a locked-out pair is refused before any password is checked. It needs the
    # request: call authenticate(request=..., ...) (Django's login views do).
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Tests turn it off (pyproject.toml) because Django's test Client.login() passes no request;
# tests/config/test_security.py turns it on to test the lockout.
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# --- end of Security ---
# ============================================================================================

# --- Celery ---
CELERY_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Embedded broker: web and worker exchange messages through files; no server needed.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        # Exchange bindings; kombu's default is ./control in whatever the working directory is.
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than the hard time limit, so a running task is never redelivered while alive.
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=4 * 3600),
    }
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
# `gpu` is served by workers started with --pool=solo (CUDA is not fork-safe).
CELERY_TASK_QUEUES = (Queue("default"), Queue("gpu"))
# Routes by task name; tasks that need a GPU are added to the `gpu` queue here.
CELERY_TASK_ROUTES = {
    "annotator.*": {"queue": "default"},
    "scoring.judge_project": {"queue": "gpu"},
    "scoring.judge_runs_reap": {"queue": "default"},
    "scoring.train_reward_model": {"queue": "gpu"},
    "scoring.reward_runs_reap": {"queue": "default"},
    # Embeddings on CPU are fine for the router's small model; a GPU worker may take it too.
    "routing.*": {"queue": "default"},
}
# How often beat runs the reapers (expired leases, judge and reward-model runs without a
# heartbeat); their thresholds are separate settings.
REAPER_INTERVAL_SECONDS = env.float("REAPER_INTERVAL_SECONDS", default=60.0)
CELERY_BEAT_SCHEDULE = {
    "leases-reap": {"task": "annotator.leases_reap", "schedule": REAPER_INTERVAL_SECONDS},
    "judge-runs-reap": {"task": "scoring.judge_runs_reap", "schedule": REAPER_INTERVAL_SECONDS},
    "reward-runs-reap": {
        "task": "scoring.reward_runs_reap",
        "schedule": REAPER_INTERVAL_SECONDS,
    },
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=3 * 3600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3 * 3600 + 300)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- The product ---
# Rows per database round trip in imports and exports: memory is bounded by this, not by file size.
IMPORT_BATCH_SIZE = env.int("IMPORT_BATCH_SIZE", default=2000)
# An export holds about (EXPORT_READERS + 2) batches of lines at once; 1000 `full` lines of
# 3 KB keep the server near 170 MB, and larger batches are no faster.
EXPORT_BATCH_SIZE = env.int("EXPORT_BATCH_SIZE", default=1000)
# Threads (each with its own database connection) that read a `full` export on PostgreSQL, which
# writes the JSON: the export runs on this many database cores. Each export holds one more
# connection for its snapshot.
EXPORT_READERS = max(1, env.int("EXPORT_READERS", default=2))
# Where background imports keep their uploaded file until a worker has read it. With workers on
# other machines this must be shared storage.
IMPORT_DIR = Path(env("IMPORT_DIR", default=str(VAR_DIR / "imports")))
# LM judge runs: comparisons per committed chunk, how long without a heartbeat makes a run stale
# (keep it well above one chunk's time), and the task's soft time limit.
JUDGE_CHUNK_SIZE = env.int("JUDGE_CHUNK_SIZE", default=32)
JUDGE_STALE_SECONDS = env.int("JUDGE_STALE_SECONDS", default=600)
JUDGE_SOFT_TIME_LIMIT = env.int("JUDGE_SOFT_TIME_LIMIT", default=12 * 3600)
# Reward-model runs: where checkpoints go (shared storage when workers run on other hosts), how
# long without a heartbeat makes a run stale, and the task's soft time limit.
REWARD_MODEL_DIR = Path(env("REWARD_MODEL_DIR", default=str(VAR_DIR / "reward-models")))
REWARD_STALE_SECONDS = env.int("REWARD_STALE_SECONDS", default=600)
REWARD_SOFT_TIME_LIMIT = env.int("REWARD_SOFT_TIME_LIMIT", default=24 * 3600)
# Router: metadata keys whose values become descriptive tags (features), the folds of its
# cross-fitting, and the PPM's candidate counts (training and hyper_simulated).
ROUTING_TAG_KEYS = env.list("ROUTING_TAG_KEYS", default=["source", "category", "subject", "subset"])
ROUTING_FOLDS = env.int("ROUTING_FOLDS", default=5)
ROUTING_PPM_CANDIDATES = env.int("ROUTING_PPM_CANDIDATES", default=300)
ROUTING_SIMULATED_CANDIDATES = env.int("ROUTING_SIMULATED_CANDIDATES", default=500)
# Live routing (routing.live): a round waits this long after the labels that queued it, so that
# a burst of labels makes one round; beat queues a round of every running policy this often.
ROUTING_ROUND_DEBOUNCE_SECONDS = env.int("ROUTING_ROUND_DEBOUNCE_SECONDS", default=10)
ROUTING_TICK_SECONDS = env.int("ROUTING_TICK_SECONDS", default=300)
CELERY_BEAT_SCHEDULE["routing-policies-tick"] = {
    "task": "routing.policies_tick",
    "schedule": ROUTING_TICK_SECONDS,
}
# How many line errors an import lists before it only counts the rest.
IMPORT_MAX_ERRORS_LISTED = 50
# Limits on what one import may hold, checked while it streams (a line over them is an error,
# FILE:LINE: field: message): bytes once decompressed (a small gzip can expand enormously),
# characters per prompt and per response (a line longer than 64 bytes a character of this is not
# parsed), and how deeply JSON arrays and objects nest in a field (metadata, raw_output, messages).
IMPORT_MAX_DECOMPRESSED_BYTES = env.int("IMPORT_MAX_DECOMPRESSED_BYTES", default=8 * 1024**3)
IMPORT_MAX_TEXT_CHARS = env.int("IMPORT_MAX_TEXT_CHARS", default=1_000_000)
IMPORT_MAX_JSON_DEPTH = env.int("IMPORT_MAX_JSON_DEPTH", default=64)
# Analytics (annotator/analytics): after labels change, the cached report is recomputed by one
# task this many seconds later (a burst of labels queues one refresh).
ANALYTICS_DEBOUNCE_SECONDS = env.int("ANALYTICS_DEBOUNCE_SECONDS", default=30)

# --- REST API (annotator/api/) ---
REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header turns anonymous requests into 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotator.api.common.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "annotator.api.common.pagination.IdCursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["annotator.api.common.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": env("API_TOKEN_THROTTLE_RATE", default="1200/min")},
    "EXCEPTION_HANDLER": "annotator.api.common.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # `?format=` names an import format here, not a renderer.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Hybrid preferences API",
    "DESCRIPTION": "Projects, comparisons, streamed import and export, judge and reward runs.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page's scripts and styles come from our own static files (no CDN; see the CSP).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "RouteEnum": "annotator.models.Route",
        # Import jobs, judge runs and reward runs share one set of states.
        "RunStatusEnum": "annotator.background.RunStatus",
        "PolicyStrategyEnum": "routing.models.PolicyStrategy",
    },
}
# Request bodies read into memory (JSON, forms): larger ones get a 413. Imports stream to disk and
# have their own limit; above API_IMPORT_SYNC_MAX_BYTES they run as a background job.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
API_IMPORT_MAX_BYTES = env.int("API_IMPORT_MAX_BYTES", default=2 * 1024**3)
API_IMPORT_SYNC_MAX_BYTES = env.int("API_IMPORT_SYNC_MAX_BYTES", default=8 * 1024**2)

# --- Logging ---
# One JSON object per line (LOG_FORMAT=json, the default unless DEBUG) or readable text (plain).
# django-structlog binds a request id to every line logged while serving a request, passes it to
# the Celery tasks the request queues, and logs each request with its status code.
LOG_FORMAT = env("LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
_log_chain = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        *_log_chain,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.StackInfoRenderer(),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# Keep the X-Request-ID a proxy sends (only where the proxy overwrites what clients send).
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = env.bool("TRUST_UPSTREAM_REQUEST_ID", default=False)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": structlog.stdlib.ProcessorFormatter,
            "foreign_pre_chain": [*_log_chain, structlog.stdlib.ExtraAdder()],
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        },
        "plain": {
            "()": structlog.stdlib.ProcessorFormatter,
            "foreign_pre_chain": _log_chain,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.dev.ConsoleRenderer(colors=False),
            ],
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # django-axes announces itself at every process start; its warnings still show.
    "loggers": {"axes": {"level": "WARNING"}},
}
