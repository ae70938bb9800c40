"""The API keys scripts log in with (imported by chat/models.py, so the app owns the
table)."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

LAST_USED_PRECISION = timedelta(minutes=1)


class ApiKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A key a script sends as `Authorization: Bearer kc_<prefix>_<secret>`.

    Only a SHA-256 of the key is stored; the key is shown once, when it is made.
    """

    PREFIX_LEN = 8

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        app_label = "chat"
        verbose_name = "API key"

    def __str__(self):
        return f"kc_{self.prefix}… ({self.user})"

    @staticmethod
    def hash_key(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def generate(cls, *, user, name: str = "") -> tuple["ApiKey", str]:
        """Create a key for `user`; return it with the raw key, which is never stored."""
        prefix = secrets.token_hex(cls.PREFIX_LEN // 2)
        raw = f"kc_{prefix}_{secrets.token_urlsafe(32)}"
        key = cls.objects.create(
            user=user, name=name, prefix=prefix, key_hash=cls.hash_key(raw)
        )
        return key, raw

    @classmethod
    def active_key_for(cls, raw: str) -> "ApiKey | None":
        """The active key of an active user that `raw` is, or None; compared in
        constant time."""
        parts = (raw or "").split("_", 2)
        if len(parts) != 3 or parts[0] != "kc":
            return None
        key = (
            cls.objects.active().select_related("user").filter(prefix=parts[1]).first()
        )
        if key is None or not hmac.compare_digest(key.key_hash, cls.hash_key(raw)):
            return None
        if not key.user.is_active:
            return None
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_PRECISION:
            # A minute's precision is plenty, and spares a write per request.
            cls.objects.filter(pk=key.pk).update(last_used_at=now)
        return key

    @classmethod
    def user_for(cls, raw: str):
        """The active user a raw key belongs to, or None."""
        key = cls.active_key_for(raw)
        return key.user if key is not None else None

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
