"""API tokens: made and revoked by their user, checked on every API request.

A key is shown once; the database keeps its SHA-256, so a leaked database does not leak usable
keys. Keys made before named tokens existed (rest_framework.authtoken) keep working.
"""

import datetime as dt
import hashlib
import re
import secrets

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token as LegacyToken

from core.throttling import FailedLoginThrottle

from .models import ApiToken

KEY_PREFIX = "cvm_"
LIFETIMES = {30: _("30 days"), 90: _("90 days"), 365: _("1 year")}
DEFAULT_LIFETIME_DAYS = 90
# Writing last_used_at on every request would make every API read a write; a minute is
# precise enough for "last used".
LAST_USE_PRECISION = dt.timedelta(minutes=1)
LEGACY_KEY = re.compile(r"[0-9a-f]{40}")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_token(*, user, name: str, lifetime_days: int = DEFAULT_LIFETIME_DAYS) -> tuple[ApiToken, str]:
    """A new token and its key; the key is not stored and cannot be shown again."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip(), key_hash=hash_key(key), prefix=key[: len(KEY_PREFIX) + 4],
        expires_at=timezone.now() + dt.timedelta(days=lifetime_days),
    )
    return token, key


def revoke_token(*, user, token_id: int) -> bool:
    """Revoke one of the user's own tokens; False when there is no such live token."""
    with transaction.atomic():
        changed = ApiToken.objects.filter(pk=token_id, user=user, revoked_at=None).update(revoked_at=timezone.now())
    return changed == 1


def tokens_of(user):
    return ApiToken.objects.filter(user=user, revoked_at=None)


class ApiTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>` with a named token (expiring, revocable) or a legacy key.

    Wrong keys are counted per address: past the limit the address gets 429 with Retry-After
    before any key is looked up, so keys cannot be guessed at speed."""

    def authenticate(self, request):
        if not self._sends_token(request):
            return None  # no query for requests without a key (sessions, anonymous)
        self.failures = FailedLoginThrottle()
        wait = self.failures.wait_for(request)
        if wait is not None:
            raise exceptions.Throttled(wait=wait)
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            self.failures.record(request)
            raise

    def _sends_token(self, request) -> bool:
        return request.META.get("HTTP_AUTHORIZATION", "").split(" ", 1)[0].lower() == self.keyword.lower()

    def authenticate_credentials(self, key):
        if key.startswith(KEY_PREFIX):
            return self._named_token(key)
        if LEGACY_KEY.fullmatch(key):
            legacy = LegacyToken.objects.select_related("user").filter(key=key).first()
            if legacy is not None and legacy.user.is_active:
                return legacy.user, legacy
        raise exceptions.AuthenticationFailed("Invalid token.")

    def _named_token(self, key):
        now = timezone.now()
        token = ApiToken.objects.select_related("user").filter(key_hash=hash_key(key), revoked_at=None).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed("Token expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        if token.last_used_at is None or now - token.last_used_at > LAST_USE_PRECISION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token.user, token
