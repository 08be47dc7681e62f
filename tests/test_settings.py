"""The settings module read from the environment: an empty variable means the default."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRINT_SETTINGS = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], 'debug': s.DEBUG, 'tz': s.TIME_ZONE, "
    "'eager': s.CELERY_TASK_ALWAYS_EAGER, 'axes': s.AXES_FAILURE_LIMIT, 'email': s.EMAIL_BACKEND, "
    "'cache': s.CACHES['default']['BACKEND'], 'cache_at': s.CACHES['default']['LOCATION']}))"
)


def settings_with(**variables) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in variables} | variables
    env["DJANGO_SETTINGS_MODULE"] = "cvm.settings"
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, "-c", PRINT_SETTINGS], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_empty_variable_means_the_default():
    """A copied .env file leaves `DATABASE_URL=` and friends set but empty."""
    names = set(re.findall(r'env(?:_int|_bool|_list)?\("([A-Z_]+)"', (ROOT / "cvm" / "settings.py").read_text()))
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "TIME_ZONE", "AXES_FAILURE_LIMIT"} <= names
    found = settings_with(**dict.fromkeys(names, ""))
    assert found == {
        "engine": "django.db.backends.sqlite3", "debug": True, "tz": "Europe/Berlin", "eager": True, "axes": 5,
        "email": "django.core.mail.backends.console.EmailBackend",
        "cache": "django.core.cache.backends.db.DatabaseCache", "cache_at": "cvm_cache",
    }


def test_empty_database_url_means_the_embedded_sqlite():
    assert settings_with(DATABASE_URL="", DB_CONN_MAX_AGE="")["engine"] == "django.db.backends.sqlite3"


def test_cache_url_moves_the_shared_cache_to_redis():
    found = settings_with(CVM_CACHE_URL="redis://127.0.0.1:6379/1")
    assert (found["cache"], found["cache_at"]) == ("django.core.cache.backends.redis.RedisCache", "redis://127.0.0.1:6379/1")
