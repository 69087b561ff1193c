"""One environment-driven settings module.

Defaults run on a laptop (SQLite, a local Redis); production sets DATABASE_URL, REDIS_URL,
EMAIL_URL, SECRET_KEY, ALLOWED_HOSTS and DEBUG=false. See docs/operations.md.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_str

# Lets classes that django-stubs declares generic (ModelAdmin, ModelForm, ...) be subscripted
# at run time too: ``admin.ModelAdmin[Place]``.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-key-change-me-in-production-0123456789")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "accounts.admin_app.AdminConfig",  # django.contrib.admin with the second factor at its login
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "audit",
    "accounts",
    "clinical",
    "monitoring",
    "alerts",
    "notifications",
    "fhir_api",
    "hl7v2",
    "operations",
    "frontend",
    "devtools",
]

MIDDLEWARE = [
    # First: everything after it sees the real client and only a trusted proxy's headers.
    "common.proxies.forwarded_headers_middleware",
    # First: a request id for every line logged about the request, and its access line.
    "operations.request_log.request_log_middleware",
    "django.middleware.security.SecurityMiddleware",
    "common.headers.content_security_policy_middleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # One audit record per request to an audited view (audit/middleware.py); a change and its
    # record share one transaction.
    "audit.middleware.AuditMiddleware",
    # Last: turns a lockout flagged during login into the 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
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

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
if DATABASE_URL.startswith("sqlite:///") and not env_str("DATABASE_URL"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded default lives in var/
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 60))
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the server, the worker and the simulator's REST calls read while one writes.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# PostgreSQL: each process keeps its connections in a pool (Django's psycopg pool), and a
# connection goes back to it when its request, task or flush ends. With persistent connections
# instead (CONN_MAX_AGE), a finished ASGI request's connection is freed only by the garbage
# collector, so the collector could not run less often (SERVER_GC_THRESHOLDS) without a burst
# of REST requests holding every connection PostgreSQL allows (docs/performance.md, series N).
# DB_POOL_MAX_SIZE=0: persistent connections (CONN_MAX_AGE) instead, e.g. behind pgbouncer.
# After an outage the pool replaces a lost connection with exponential back-off (1, 2, 4, 8 s
# ...), so PostgreSQL back after 16 s would wait 15 s more for its next try; giving a lost
# connection up after DB_POOL_RECONNECT_TIMEOUT seconds instead lets the next request that
# needs one connect at once. While PostgreSQL is away a request waits DB_POOL_TIMEOUT for a
# connection before it fails (a device is told "storage unavailable", a new one is closed
# 4503): seconds, not the library's 30, since device sign-ins share one thread and queue
# behind each other's waits; with 20 connections a process never waits that long otherwise.
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 20)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DB_POOL_MAX_SIZE:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": env_float("DB_POOL_TIMEOUT", 2.0),
        "reconnect_timeout": env_float("DB_POOL_RECONNECT_TIMEOUT", 2.0),
    }
DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME") or None}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# The lockout backend first: a locked-out account or client is refused before any password
# check, for the API login and the admin login alike.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Redis: channel layer, Celery broker, cache, OTP ------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

# Redis timeouts (seconds), named by use; every Redis client of the server is made with them by
# common/redis_clients.py (the cache and the channel layer below take theirs here).
# Connecting, for every client: a black-holed host fails within this.
REDIS_CONNECT_TIMEOUT = env_float("REDIS_CONNECT_TIMEOUT", 2.0)
# A cache call (throttles, presence keys, one-time codes).
REDIS_CACHE_TIMEOUT = env_float("REDIS_CACHE_TIMEOUT", 2.0)
# The ingest paths' append to the readings stream (tried once): a Redis that does not answer
# costs one flush at most this; then the breaker sends readings to the database backlog without
# asking Redis until it answers a probe (monitoring/stream/backlog.py). An append takes a few
# milliseconds: a stall this long is as good as an outage for the acks.
REDIS_APPEND_TIMEOUT = env_float("REDIS_APPEND_TIMEOUT", 0.5)
# Health checks and the Celery queue metrics: a scrape or a probe never waits longer.
REDIS_CHECK_TIMEOUT = env_float("REDIS_CHECK_TIMEOUT", 1.0)
# The live path (monitoring/live): a group operation of a connect or a flush, and the probe of
# the live feed while Redis is away, give up after LIVE_CALL_TIMEOUT; the feed probes every
# LIVE_PROBE_SECONDS; a hub's subscription is confirmed within LIVE_SUBSCRIBE_TIMEOUT, its
# silent link pinged every LIVE_PING_SECONDS, and a lost link retried after each of
# LIVE_RECONNECT_DELAYS (the last one repeating); a channel-layer receive that fails is retried
# after a back-off growing up to LIVE_RECEIVE_RETRY_MAX_SECONDS.
LIVE_CALL_TIMEOUT = env_float("LIVE_CALL_TIMEOUT", 2.0)
LIVE_PROBE_SECONDS = env_float("LIVE_PROBE_SECONDS", 1.0)
LIVE_SUBSCRIBE_TIMEOUT = env_float("LIVE_SUBSCRIBE_TIMEOUT", 5.0)
LIVE_PING_SECONDS = env_float("LIVE_PING_SECONDS", 5.0)
LIVE_RECONNECT_DELAYS = (0.2, 0.5, 1.0)
LIVE_RECEIVE_RETRY_MAX_SECONDS = env_float("LIVE_RECEIVE_RETRY_MAX_SECONDS", 2.0)
# While a process defers readings to the backlog (Redis away), its replayer thread probes Redis
# and replays the backlog every READINGS_BACKLOG_REPLAY_SECONDS (off the storing thread).
READINGS_BACKLOG_REPLAY_SECONDS = env_float("READINGS_BACKLOG_REPLAY_SECONDS", 1.0)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "pm"),
        # A Redis that stops answering fails a cache call (throttles and presence degrade)
        # within seconds instead of hanging the request or the device's connect.
        "OPTIONS": {
            "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
            "socket_timeout": REDIS_CACHE_TIMEOUT,
        },
    }
}

# Channel layer. Capacity is per channel (one WebSocket connection): a dashboard that falls
# this many messages behind starts losing them, and a reconnect resynchronises it from the
# snapshot. Expiry bounds how long an undelivered message waits. Group expiry is longer than
# any connection lives between re-subscriptions. See docs/architecture.md.
CHANNEL_LAYER_BACKEND = env_str("CHANNEL_LAYER", "redis")
CHANNEL_LAYER_CAPACITY = env_int("CHANNEL_LAYER_CAPACITY", 1000)
CHANNEL_LAYER_EXPIRY = env_int("CHANNEL_LAYER_EXPIRY", 30)
CHANNEL_LAYER_GROUP_EXPIRY = env_int("CHANNEL_LAYER_GROUP_EXPIRY", 86400)
CHANNEL_LAYERS: dict[str, dict[str, Any]]
if CHANNEL_LAYER_BACKEND == "memory":
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": (
                "channels_redis.pubsub.RedisPubSubChannelLayer"
                if CHANNEL_LAYER_BACKEND == "pubsub"
                else "channels_redis.core.RedisChannelLayer"
            ),
            "CONFIG": {
                "hosts": [REDIS_URL],
                **(
                    {}
                    if CHANNEL_LAYER_BACKEND == "pubsub"
                    else {
                        "capacity": CHANNEL_LAYER_CAPACITY,
                        "expiry": CHANNEL_LAYER_EXPIRY,
                        "group_expiry": CHANNEL_LAYER_GROUP_EXPIRY,
                    }
                ),
            },
        }
    }

# Live dashboard events (readings, device status, alerts, audio) fan out per process over
# Redis pub/sub (monitoring/live/hub.py). Pub/sub channels are global to a Redis server,
# not per database: the prefix names the deployment and the database number, so two
# deployments sharing one Redis server stay apart.
LIVE_CHANNEL_PREFIX = env_str(
    "LIVE_CHANNEL_PREFIX",
    f"{CACHES['default']['KEY_PREFIX']}:{(urlparse(REDIS_URL).path.strip('/') or '0')}:",
)

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# Tasks are acknowledged after they ran (acks_late), so a worker killed mid-task leaves its
# message "unacked" in Redis, handed to a worker again after the visibility timeout. That
# timeout must exceed the longest a delivered task may wait before it finishes: its retry
# countdown (at most 300 s, accounts.tasks.MAIL_RETRY; a waiting countdown is held unacked by
# the worker) plus its run time; shorter, and a task waiting for its retry is run twice.
# Unacked messages are looked for every 10 s (unacked_restore_throttle 1; kombu's default scans
# every 100 s). Alarm e-mail does not wait for this: the delivery sweep below retries a
# delivery stuck "sending" after NOTIFICATION_STUCK_SECONDS.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 360)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "unacked_restore_throttle": 1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A Redis broker goes through our Redis transport: the worker survives a Redis restart while
# it holds unacknowledged messages (config/broker.py).
if urlparse(CELERY_BROKER_URL).scheme == "redis":
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}

# --- E-mail: EMAIL_URL=smtp://user:pass@host:587?tls=1 (or ssl=1); console when unset --------
EMAIL_URL = env_str("EMAIL_URL", "")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Patient Monitor <monitor@localhost>")
if EMAIL_URL:
    _email = urlparse(EMAIL_URL)
    _email_query = parse_qs(_email.query)
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _email.hostname or "localhost"
    EMAIL_PORT = _email.port or 25
    EMAIL_HOST_USER = unquote(_email.username or "")
    EMAIL_HOST_PASSWORD = unquote(_email.password or "")
    EMAIL_USE_TLS = _email_query.get("tls", ["0"])[0] in {"1", "true"}
    EMAIL_USE_SSL = _email_query.get("ssl", ["0"])[0] in {"1", "true"}
    EMAIL_TIMEOUT = 10
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "common.api.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    # JSON read strictly (common.strictjson): NaN, Infinity and deep nesting are a 400.
    "DEFAULT_PARSER_CLASSES": [
        "common.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "common.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "login": env_str("THROTTLE_LOGIN", "10/min"),
        "password_reset": env_str("THROTTLE_PASSWORD_RESET", "5/min"),
        "register": env_str("THROTTLE_REGISTER", "10/min"),
    },
    # The client address is REMOTE_ADDR, which common/proxies.py has already set from a
    # trusted proxy's X-Forwarded-For; DRF must not read that header itself.
    "NUM_PROXIES": 0,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
}

SPECTACULAR_SETTINGS = {
    # Swagger UI and ReDoc are served by this server: hospital networks may have no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "TITLE": "Patient Monitoring API",
    "DESCRIPTION": (
        "Management REST API of the real-time patient-monitoring server. People authenticate "
        "with `Authorization: Bearer <access JWT>`; devices with `Authorization: Device <token>`. "
        'Every error has the shape `{"error": {"code", "message", "details"}}`. '
        "The WebSocket channels are described by the AsyncAPI document at /api/asyncapi/."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {},
}

# --- FHIR ---------------------------------------------------------------------------------
# Prefix of this server's identifier and code systems (MRNs per place, device serials, alert
# kinds): set it to a URI your organisation owns, e.g. an OID as urn:oid:1.2.3.
FHIR_SYSTEM_BASE = env_str("FHIR_SYSTEM_BASE", "urn:patient-monitor")
FHIR_DEFAULT_COUNT = env_int("FHIR_DEFAULT_COUNT", 100)
FHIR_MAX_COUNT = env_int("FHIR_MAX_COUNT", 1000)

# --- Monitoring -----------------------------------------------------------------------------
READING_MAX_FUTURE_SECONDS = env_int("READING_MAX_FUTURE_SECONDS", 300)
# The oldest reading accepted: a device clock reset to 1970 (or year 1) is refused, not stored
# into a patient's history. A device that was offline longer than this cannot upload its backlog.
READING_MAX_AGE_DAYS = env_int("READING_MAX_AGE_DAYS", 30)
# The longest a reading waits for others to join its flush (seconds; monitoring/ingest/batcher.py).
INGEST_FLUSH_INTERVAL = env_float("INGEST_FLUSH_INTERVAL", 0.01)
INGEST_MAX_BATCH = env_int("INGEST_MAX_BATCH", 2000)
# The web process's interpreter switch interval (seconds): how long a worker thread returning
# from a database round trip may wait for the event loop to release the lock (common/runtime.py).
SERVER_SWITCH_INTERVAL = env_float("SERVER_SWITCH_INTERVAL", 0.0005)
# The collector's thresholds in the web and HL7 processes (common.runtime): allocations before a
# young collection, then young collections per middle one and middle ones per full one. The
# interpreter's first two; a full collection (which walks every connection's objects, 110-170
# ms at 1,000 devices) at most every 1,000 middle ones instead of 10 (docs/performance.md,
# series N). Rarer collections need the database pool above (DB_POOL_MAX_SIZE).
SERVER_GC_THRESHOLDS = tuple(
    int(n) for n in env_list("SERVER_GC_THRESHOLDS", ["700", "10", "1000"])
)
WS_MAX_FRAME_BYTES = env_int("WS_MAX_FRAME_BYTES", 256 * 1024)
WS_MAX_BATCH_ITEMS = env_int("WS_MAX_BATCH_ITEMS", 1000)
DEVICE_OFFLINE_SECONDS = env_int("DEVICE_OFFLINE_SECONDS", 30)
DASHBOARD_AUTH_TIMEOUT = env_float("DASHBOARD_AUTH_TIMEOUT", 10.0)
# How often an open dashboard re-checks its user (active, places) between token renewals.
DASHBOARD_SESSION_CHECK_SECONDS = env_float("DASHBOARD_SESSION_CHECK_SECONDS", 30.0)
# One POST /api/records/ carries at most this many readings (a device catching up after about
# 20 minutes offline at 4 Hz).
RECORDS_MAX_BATCH = env_int("RECORDS_MAX_BATCH", 5000)

# The readings stream that feeds the alarm evaluator (monitoring/stream.py, docs/alarms.md).
# A patient's readings go to partition patient_id % N, read by one evaluator at a time, so N
# is the most evaluator processes that share the work. Change it only with the stream drained:
# patients would move to other partitions and their readings could be evaluated out of order.
READINGS_STREAM_PARTITIONS = env_int("READINGS_STREAM_PARTITIONS", 8)
# How long the stream keeps an entry (XADD MINID ~, by the entry's time): about 70 bytes of
# Redis memory per reading, so 2 hours hold about 1 GB at 2,000 readings/s and 6 GB at
# 12,000. An evaluator down for longer loses the oldest unevaluated readings to trimming:
# those are never evaluated.
READINGS_STREAM_RETENTION_SECONDS = env_int("READINGS_STREAM_RETENTION_SECONDS", 7200)
# A dead evaluator's partitions wait this long before another evaluator takes them over (their
# alarms are late by up to this much); a live one renews its leases every third of it.
READINGS_STREAM_LEASE_MS = env_int("READINGS_STREAM_LEASE_MS", 10_000)
# An evaluator that finds entries reads again only this long after its previous read began, so
# a busy stream is evaluated in batches a few times a second (each batch's queries are paid per
# batch); alarms wait at most this much longer. 0: read again at once.
READINGS_STREAM_PACE_SECONDS = env_float("READINGS_STREAM_PACE_SECONDS", 0.2)
# /readyz answers 503 when a stored reading has waited longer than this (seconds) in the readings
# stream for alarm evaluation: alarms would be late by as much.
READY_EVALUATION_LAG_SECONDS = env_float("READY_EVALUATION_LAG_SECONDS", 10.0)

# --- Metrics (docs/operations.md, "Metrics") -------------------------------------------------
# GET /metrics and the exporter ports answer loopback, or a request with
# "Authorization: Bearer <METRICS_TOKEN>" (unset: loopback only).
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# The exporter port of a process that serves no HTTP (the alarm evaluator, the Celery worker);
# 0: none. Web processes serve /metrics on their own port.
METRICS_PORT = env_int("METRICS_PORT", 0)
METRICS_ADDR = env_str("METRICS_ADDR", "127.0.0.1")
# --- HL7 v2 over MLLP (docs/hl7.md) --------------------------------------------------------
HL7_MLLP_HOST = env_str("HL7_MLLP_HOST", "127.0.0.1")
HL7_MLLP_PORT = env_int("HL7_MLLP_PORT", 2575)
# A frame (one message) larger than this is refused with AR and skipped; the connection stays.
HL7_MLLP_MAX_FRAME_BYTES = env_int("HL7_MLLP_MAX_FRAME_BYTES", 1024 * 1024)
# A connection that sends nothing for this long is closed (gateways reconnect on demand).
HL7_MLLP_IDLE_TIMEOUT = env_float("HL7_MLLP_IDLE_TIMEOUT", 300.0)
# Messages of one connection in flight at once (pipelined); reading pauses beyond that.
HL7_MLLP_PIPELINE_DEPTH = env_int("HL7_MLLP_PIPELINE_DEPTH", 64)
# How long the listener trusts a device lookup (active, its patient) before reading it again.
HL7_DEVICE_CACHE_SECONDS = env_float("HL7_DEVICE_CACHE_SECONDS", 2.0)
# MSH-3 and MSH-4 of what the server sends (ACKs, PCD-04 alert reports).
HL7_SENDING_APPLICATION = env_str("HL7_SENDING_APPLICATION", "PATIENT_MONITOR")
HL7_SENDING_FACILITY = env_str("HL7_SENDING_FACILITY", "")
# Enrolled senders only (docs/hl7.md, "Senders"): on whenever DEBUG is off.
HL7_SENDERS_REQUIRED = env_bool("HL7_SENDERS_REQUIRED", not DEBUG)
# ADT: places (comma-separated ids, or "*") where a ward that PV1-3 names and that does not
# exist yet is created; elsewhere the message is refused (AE unknown_ward).
HL7_ADT_CREATE_WARDS = env_str("HL7_ADT_CREATE_WARDS", "")
# TLS on the MLLP listener (empty: plain TCP): the server's certificate and key (PEM), and
# the CA that issues the gateways' client certificates (set: a client certificate is required).
HL7_MLLP_TLS_CERT = env_str("HL7_MLLP_TLS_CERT", "")
HL7_MLLP_TLS_KEY = env_str("HL7_MLLP_TLS_KEY", "")
HL7_MLLP_TLS_CLIENT_CA = env_str("HL7_MLLP_TLS_CLIENT_CA", "")
# PCD-04 alert reports: how long to wait for the alert manager's connection and its ACK.
HL7_ALERT_MANAGER_TIMEOUT = env_float("HL7_ALERT_MANAGER_TIMEOUT", 5.0)

# The readings table on PostgreSQL: one range partition per UTC day (monitoring/partitions.py,
# docs/deployment.md). The maintenance task creates this many days ahead, every hour.
READINGS_PARTITIONS_AHEAD_DAYS = env_int("READINGS_PARTITIONS_AHEAD_DAYS", 7)
# Day partitions whose readings are all older than this many days are dropped whole; 0 keeps
# every reading. Readings from this long before an alert was raised to this long after it
# resolved are copied to the archive table first.
READINGS_RETENTION_DAYS = env_int("READINGS_RETENTION_DAYS", 0)
READINGS_ARCHIVE_BEFORE_MINUTES = env_int("READINGS_ARCHIVE_BEFORE_MINUTES", 60)
READINGS_ARCHIVE_AFTER_MINUTES = env_int("READINGS_ARCHIVE_AFTER_MINUTES", 30)
CELERY_BEAT_SCHEDULE["readings-partitions-maintain"] = {
    "task": "monitoring.tasks.readings_partitions_maintain",
    "schedule": 3600.0,
    "options": {"expires": 3600.0},
}

# --- Access audit (docs/security.md) ---------------------------------------------------------
# Records older than this many days are removed by `manage.py audit_purge` and the daily
# maintenance task; at least 365 (one year, DPDP Rules 2025 rule 6).
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 400)
if AUDIT_RETENTION_DAYS < 365:
    raise ImproperlyConfigured("AUDIT_RETENTION_DAYS must be at least 365.")
CELERY_BEAT_SCHEDULE["audit-maintain"] = {
    "task": "audit.tasks.audit_maintain",
    "schedule": 86400.0,
    "options": {"expires": 3600.0},
}

# --- Second factor (docs/security.md) --------------------------------------------------------
# Roles that must log in with a TOTP code or a recovery code (comma separated; empty: nobody
# is required to, others may still enrol). `make run` sets it empty for the demo unless given.
MFA_REQUIRED_ROLES = env_list("MFA_REQUIRED_ROLES", ["admin"])
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Patient Monitor")
# django-otp's own delay after a wrong code (seconds doubling per failure, per device), on top
# of the lockout (wrong codes count as failed logins).
OTP_TOTP_THROTTLE_FACTOR = env_int("OTP_TOTP_THROTTLE_FACTOR", 1)
OTP_STATIC_THROTTLE_FACTOR = env_int("OTP_STATIC_THROTTLE_FACTOR", 1)

# --- Password reset one-time codes ----------------------------------------------------------
OTP_TTL_SECONDS = env_int("OTP_TTL_SECONDS", 600)
OTP_MAX_ATTEMPTS = env_int("OTP_MAX_ATTEMPTS", 5)
# Wrong or right, at most this many code attempts per account in the window, whatever codes
# were issued in between (a new code does not reset it).
OTP_ACCOUNT_MAX_ATTEMPTS = env_int("OTP_ACCOUNT_MAX_ATTEMPTS", 10)
OTP_ACCOUNT_WINDOW_SECONDS = env_int("OTP_ACCOUNT_WINDOW_SECONDS", 3600)

# --- Logging (docs/operations.md) ---------------------------------------------------------
# Every process (web, worker, beat, evaluator, management commands) logs to stderr through
# this: LOG_FORMAT=text (readable, the default) or json (one JSON object per line, with the
# request, task, device, patient and alert ids the line is about; common/logs.py).
LOG_FORMAT = env_str("LOG_FORMAT", "text").strip().lower()
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "common.logs.ContextFilter"}},
    "formatters": {
        "text": {
            "()": "common.logs.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "common.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # One line per HTTP request of the web process (operations/request_log.py);
        # ACCESS_LOG_LEVEL=WARNING turns it off.
        "access": {"level": env_str("ACCESS_LOG_LEVEL", "INFO")},
    },
}

# --- Proxies, HTTPS, login lockout (docs/deployment.md) ---------------------------------------
# Load balancers or reverse proxies in front of the server (IP addresses or networks, comma
# separated). Only a request coming straight from one of them has its X-Forwarded-For (the
# client address throttles and lockouts count) and X-Forwarded-Proto (HTTPS) believed; from
# anyone else those headers are dropped (common/proxies.py). Default: none.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Sent only on responses served over HTTPS; on by default in production (DEBUG=false).
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# django-axes: failed logins (API and /admin/) per account and client address; after
# AXES_FAILURE_LIMIT of them that pair is refused (429) for AXES_COOLOFF_MINUTES. Per pair, so
# an attacker elsewhere cannot lock a nurse out; the per-address throttles bound the rest.
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "accounts.lockout.lockout_username"
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.lockout_client_address"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_DISABLE_ACCESS_LOG = True

# --- Alarms and alerts (docs/alarms.md) -----------------------------------------------------
# Per-profile default bands and hold times can be overridden here as JSON, e.g.
# ALARM_LIMITS='{"adult:heart_rate": {"hold_high_seconds": 15}}'; per patient through the API.
ALARM_LIMITS = json.loads(env_str("ALARM_LIMITS", "") or "{}")
# A raised clinical alarm resolves once the rate has been back in range this long.
ALARM_CLEAR_SECONDS = env_int("ALARM_CLEAR_SECONDS", 5)
# CTG alarms (docs/alarms.md, "CTG alarms"): default settings as JSON, e.g.
# ALARM_CTG_LIMITS='{"signal_loss_percent": 30}'; per patient through the API. The analysis
# of a patient's last 30 minutes runs at most every ALARM_CTG_EVALUATE_SECONDS (of the
# readings' own time), and a raised CTG alarm resolves once clear for ALARM_CTG_CLEAR_SECONDS.
ALARM_CTG_LIMITS = json.loads(env_str("ALARM_CTG_LIMITS", "") or "{}")
ALARM_CTG_EVALUATE_SECONDS = env_float("ALARM_CTG_EVALUATE_SECONDS", 5.0)
# The ward tiles' CTG line: a new classification or baseline is stored and shown at once; a
# change of the reasons' wording alone (a signal-loss share moving by a fraction) at most this
# often, so an evaluator following hundreds of fetal monitors does not rewrite every row every
# evaluation.
CTG_REASONS_REFRESH_SECONDS = env_float("CTG_REASONS_REFRESH_SECONDS", 60.0)
# Strip notes (monitoring.notes): the author may correct a note this long after writing it;
# afterwards it is part of the record and is only annotated.
NOTE_EDIT_MINUTES = env_float("NOTE_EDIT_MINUTES", 15.0)
ALARM_CTG_CLEAR_SECONDS = env_int("ALARM_CTG_CLEAR_SECONDS", 30)
# A high-priority alert unacknowledged this long is escalated to admins, and again every
# interval until someone acknowledges it.
ALERT_ESCALATION_SECONDS = env_int("ALERT_ESCALATION_SECONDS", 120)
ALARM_SCAN_SECONDS = env_float("ALARM_SCAN_SECONDS", 5.0)
ALERT_WEBHOOK_TIMEOUT = env_float("ALERT_WEBHOOK_TIMEOUT", 5.0)
# An alert delivery still "sending" after this long was cut off (its worker died mid-send;
# one attempt takes at most a few EMAIL_TIMEOUTs): the sweep, every ALERT_DELIVERY_SWEEP_SECONDS,
# queues it again. A worker killed mid-send delays an alarm e-mail by at most about the sum.
NOTIFICATION_STUCK_SECONDS = env_int("NOTIFICATION_STUCK_SECONDS", 60)
ALERT_DELIVERY_SWEEP_SECONDS = env_float("ALERT_DELIVERY_SWEEP_SECONDS", 10.0)
# Failed attempts are tried again after FIRST, doubling up to MAX seconds; after MAX_ATTEMPTS
# (about 15 minutes) the delivery has failed for good: a technical alarm on the ward.
NOTIFICATION_RETRY_FIRST_SECONDS = env_float("NOTIFICATION_RETRY_FIRST_SECONDS", 2.0)
NOTIFICATION_RETRY_MAX_SECONDS = env_float("NOTIFICATION_RETRY_MAX_SECONDS", 60.0)
NOTIFICATION_MAX_ATTEMPTS = env_int("NOTIFICATION_MAX_ATTEMPTS", 20)
# The sweep hands out a due delivery this long after it fell due (its own queued attempt
# would have taken it by then: that message was lost).
NOTIFICATION_SWEEP_GRACE_SECONDS = env_float("NOTIFICATION_SWEEP_GRACE_SECONDS", 5.0)
# /readyz: "degraded" while a delivery failed for good within this many seconds, or pending
# deliveries have been due for longer than NOTIFICATION_OVERDUE_SECONDS (nobody works them).
NOTIFICATION_FAILED_READY_SECONDS = env_int("NOTIFICATION_FAILED_READY_SECONDS", 3600)
NOTIFICATION_OVERDUE_SECONDS = env_int("NOTIFICATION_OVERDUE_SECONDS", 120)
CELERY_BEAT_SCHEDULE.update(
    {
        "alerts-device-offline-scan": {
            "task": "notifications.tasks.alerts_offline_scan",
            "schedule": ALARM_SCAN_SECONDS,
            "options": {"expires": ALARM_SCAN_SECONDS * 2},
        },
        "alerts-escalation-scan": {
            "task": "notifications.tasks.alerts_escalation_scan",
            "schedule": ALARM_SCAN_SECONDS,
            "options": {"expires": ALARM_SCAN_SECONDS * 2},
        },
        "alerts-delivery-sweep": {
            "task": "notifications.tasks.alerts_delivery_sweep",
            "schedule": ALERT_DELIVERY_SWEEP_SECONDS,
            "options": {"expires": ALERT_DELIVERY_SWEEP_SECONDS},
        },
    }
)
