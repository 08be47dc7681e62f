"""API rate limits (429 with Retry-After): requests per token, wrong keys per address."""

import math

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class SettingsRateThrottle(SimpleRateThrottle):
    """Rates from settings.CVM_API_THROTTLE_RATES, read when a request arrives (so tests and
    deployments can change them); a missing or empty rate means no limit. Counts live in the
    shared cache, so every web process counts together."""

    def get_rate(self):
        return settings.CVM_API_THROTTLE_RATES.get(self.scope) or None


class TokenRateThrottle(SettingsRateThrottle):
    """Per token (a session counts as its user's token)."""

    scope = "token"

    def get_cache_key(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return None
        auth = request.auth
        ident = f"{type(auth).__name__}-{auth.pk}" if getattr(auth, "pk", None) is not None else f"user-{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class FailedLoginThrottle(SettingsRateThrottle):
    """Per address: wrong API keys, checked before a key is looked up and counted after it failed.

    Requests without any credentials are not counted: they answer 401 without touching the
    database, and counting them in the database cache would cost more than answering them."""

    scope = "address"

    def __init__(self):
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def _load(self, request):
        self.key = self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()

    def wait_for(self, request) -> int | None:
        """Seconds to wait, or None while this address may try keys."""
        if self.rate is None:
            return None
        self._load(request)
        if len(self.history) >= self.num_requests:
            return math.ceil(self.wait() or 1)
        return None

    def record(self, request) -> None:
        if self.rate is None:
            return
        self._load(request)
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)
