"""Settings for koboldchat, read from the environment (see .env.example).

With nothing set it runs as a development server: SQLite, the in-memory channel layer and
KoboldCpp at http://127.0.0.1:5001. Production (DJANGO_DEBUG off) must name its secrets.
"""

import os
from datetime import timedelta
from pathlib import Path
from tempfile import gettempdir

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from agents.conf import DEFAULTS as AGENTS_DEFAULTS
from koboldchat.channel_layer import channel_layers_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=True)

_REQUIRED_IN_PRODUCTION = ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS")
if not DEBUG:
    _missing = [
        name for name in _REQUIRED_IN_PRODUCTION if not env.str(name, default="")
    ]
    if _missing:
        raise ImproperlyConfigured(
            "DJANGO_DEBUG is off, so these environment variables must be set: "
            + ", ".join(_missing)
        )

SECRET_KEY = env.str(
    "DJANGO_SECRET_KEY", default="django-insecure-dev-only-koboldchat-key-change-me"
)
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "ninja",
    "axes",
    "csp",
    "agents",
    "chat",
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
    "csp.middleware.CSPMiddleware",
    # Last: it turns a login refused by AxesStandaloneBackend into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "koboldchat.urls"
ASGI_APPLICATION = "koboldchat.asgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
}
# Connections are kept between calls: a reply job or a socket touches the database
# through one worker thread, and reconnecting on every call was most of its cost.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=300)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the page read history while a reply job checkpoints; IMMEDIATE avoids
    # "database is locked" upgrades when two writers meet.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # The test database is a file too, not Django's shared-cache memory database: that
    # one locks whole tables ("database table is locked", no busy wait) where the
    # file in WAL mode lets a reader and the checkpointing job go on together, as
    # they do in production.
    DATABASES["default"].setdefault("TEST", {}).setdefault(
        "NAME", str(Path(gettempdir()) / f"koboldchat-test-{os.getpid()}.sqlite3")
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
CHANNEL_LAYERS = channel_layers_config(REDIS_URL)

AUTHENTICATION_BACKENDS = [
    "koboldchat.login_throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes): a username and address pair that fails
# AXES_FAILURE_LIMIT times in a row is locked out for the cool-off; staff unlock it in
# the admin (Axes > Access attempts). Admin logins go through the same check.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "koboldchat.login_throttle.lockout_response"

# Password reset mails a link: its pages are served only when mail is configured.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="koboldchat@localhost")

# Content-Security-Policy (django-csp): everything from our own origin, no inline
# script, no plugins, never framed.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# DJANGO_HTTPS=off: served over plain HTTP on this machine (the run command), so no
# redirect to https, no HSTS, and cookies a plain-HTTP page can send back.
if not DEBUG and env.bool("DJANGO_HTTPS", default=True):
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- KoboldCpp and the LLM layer (agents app) -------------------------------------
KOBOLDCPP_URL = env.str(
    "KOBOLDCPP_URL", default=AGENTS_DEFAULTS["KOBOLDCPP_URL"]
).rstrip("/")
# More KoboldCpp servers (comma-separated URLs): the pool, with KOBOLDCPP_URL, that the
# admin's backend rows are seeded from (chat.pool).
KOBOLDCPP_URLS = env.list("KOBOLDCPP_URLS", default=[])
KOBOLDCPP_API = env.str("KOBOLDCPP_API", default=AGENTS_DEFAULTS["KOBOLDCPP_API"])
KOBOLDCPP_PASSWORD = env.str(
    "KOBOLDCPP_PASSWORD", default=AGENTS_DEFAULTS["KOBOLDCPP_PASSWORD"]
)
KOBOLDCPP_CHAT_TEMPLATE = env.str(
    "KOBOLDCPP_CHAT_TEMPLATE", default=AGENTS_DEFAULTS["KOBOLDCPP_CHAT_TEMPLATE"]
)
LLM_FIRST_TOKEN_TIMEOUT = env.float(
    "LLM_FIRST_TOKEN_TIMEOUT", default=AGENTS_DEFAULTS["LLM_FIRST_TOKEN_TIMEOUT"]
)
LLM_MAX_SILENCE = env.float(
    "LLM_MAX_SILENCE", default=AGENTS_DEFAULTS["LLM_MAX_SILENCE"]
)
LLM_STREAM_TIMEOUT = env.float(
    "LLM_STREAM_TIMEOUT", default=AGENTS_DEFAULTS["LLM_STREAM_TIMEOUT"]
)
LLM_BUSY_RETRIES = env.int(
    "LLM_BUSY_RETRIES", default=AGENTS_DEFAULTS["LLM_BUSY_RETRIES"]
)
INTENT_DETECTION = env.str(
    "INTENT_DETECTION", default=AGENTS_DEFAULTS["INTENT_DETECTION"]
)
INTENT_TIMEOUT = env.float("INTENT_TIMEOUT", default=AGENTS_DEFAULTS["INTENT_TIMEOUT"])
KOBOLDCHAT_EMBEDDED_MODEL = env.str("KOBOLDCHAT_EMBEDDED_MODEL", default="auto")
# Requests from this machine (127.0.0.1, no credentials, not through a proxy) act as
# this user on the REST API and the socket: `curl localhost:8001/api/...` just works.
KOBOLDCHAT_LOCAL_USER = env.str("KOBOLDCHAT_LOCAL_USER", default="")
# Set by the run command when it started the embedded model (shown in the page).
KOBOLDCHAT_BACKEND_LABEL = env.str("KOBOLDCHAT_BACKEND_LABEL", default="")

# --- Chat behaviour ---------------------------------------------------------------
CHAT_MAX_MESSAGE_CHARS = env.int("CHAT_MAX_MESSAGE_CHARS", default=16000)
CHAT_MAX_FRAME_BYTES = env.int("CHAT_MAX_FRAME_BYTES", default=32 * 1024)
CHAT_MAX_IMPORT_BYTES = env.int("CHAT_MAX_IMPORT_BYTES", default=5 * 1024 * 1024)
CHAT_MAX_IMPORT_MESSAGES = env.int("CHAT_MAX_IMPORT_MESSAGES", default=5000)
CHAT_RATE_LIMIT_PER_MINUTE = env.int("CHAT_RATE_LIMIT_PER_MINUTE", default=20)
CHAT_DAILY_REPLY_LIMIT = env.int("CHAT_DAILY_REPLY_LIMIT", default=0)
CHAT_DAILY_TOKEN_LIMIT = env.int("CHAT_DAILY_TOKEN_LIMIT", default=0)
CHAT_MAX_SOCKETS_PER_USER = env.int("CHAT_MAX_SOCKETS_PER_USER", default=20)
BACKEND_CONCURRENCY = env.int(
    "BACKEND_CONCURRENCY", default=AGENTS_DEFAULTS["BACKEND_CONCURRENCY"]
)
CHAT_CHECKPOINT_SECONDS = env.float("CHAT_CHECKPOINT_SECONDS", default=1.0)
CHAT_HEARTBEAT_STALE_SECONDS = env.float("CHAT_HEARTBEAT_STALE_SECONDS", default=30.0)
CHAT_REAPER_INTERVAL_SECONDS = env.float("CHAT_REAPER_INTERVAL_SECONDS", default=15.0)
if CHAT_HEARTBEAT_STALE_SECONDS < 3 * CHAT_CHECKPOINT_SECONDS:
    # A live job beats at most once a checkpoint tick: a shorter limit would let
    # reapers take over replies that are only waiting in line.
    raise ImproperlyConfigured(
        "CHAT_HEARTBEAT_STALE_SECONDS must be at least 3 × CHAT_CHECKPOINT_SECONDS "
        f"({CHAT_HEARTBEAT_STALE_SECONDS} < 3 × {CHAT_CHECKPOINT_SECONDS})."
    )
# A reply whose process died is continued from its checkpoint by another process (or by
# the same one restarted), up to this many times; off: it is marked interrupted.
CHAT_AUTO_CONTINUE = env.bool("CHAT_AUTO_CONTINUE", default=True)
CHAT_MAX_HANDOVERS = env.int("CHAT_MAX_HANDOVERS", default=3)
# On SIGTERM/SIGINT, how long running replies may go on before they are handed over.
CHAT_DRAIN_SECONDS = env.float("CHAT_DRAIN_SECONDS", default=30.0)
# The OpenAI-compatible endpoint (/v1/): a comment line this often while a request waits,
# the largest max_tokens (and the default), the longest prompt in characters.
GATEWAY_KEEPALIVE_SECONDS = env.float("GATEWAY_KEEPALIVE_SECONDS", default=10.0)
GATEWAY_MAX_TOKENS = env.int("GATEWAY_MAX_TOKENS", default=1024)
GATEWAY_MAX_PROMPT_CHARS = env.int("GATEWAY_MAX_PROMPT_CHARS", default=200_000)

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "agents": {"level": LOG_LEVEL},
        "chat": {"level": LOG_LEVEL},
        "django.request": {"level": "ERROR"},
    },
}
