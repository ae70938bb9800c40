"""The usage ledger (one row per reply started, kept when replies or conversations are
deleted) and the per-user and per-group daily quotas that are checked against it."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone


class UsageEntryQuerySet(models.QuerySet):
    def since(self, moment):
        return self.filter(created_at__gte=moment)

    def totals(self) -> dict:
        """{"replies": rows, "tokens": prompt + completion tokens known so far}."""
        tokens = Coalesce("prompt_tokens", 0) + Coalesce("completion_tokens", 0)
        return self.aggregate(
            replies=models.Count("id"), tokens=Coalesce(models.Sum(tokens), 0)
        )


class UsageEntry(models.Model):
    class Kind(models.TextChoices):
        MESSAGE = "message"
        REGENERATE = "regenerate"
        CONTINUE = "continue"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="usage_entries",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # A plain integer, not a foreign key: deleting the reply must not touch its entry.
    message_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The reply's id (it may have been deleted)."
    )
    created_at = models.DateTimeField(default=timezone.now)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)

    objects = UsageEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "created_at"], name="usage_user_time"),
            models.Index(fields=["message_id"], name="usage_message"),
        ]
        verbose_name = "usage entry"
        verbose_name_plural = "usage ledger"

    def __str__(self):
        return f"{self.kind} by {self.user_id} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def tokens(self) -> int | None:
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


class DailyUsage(UsageEntry):
    """The ledger summed per user and day (an admin page of its own)."""

    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "daily usage"


class QuotaFields(models.Model):
    daily_replies = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Replies a day. Empty: the default; 0: no limit.",
    )
    daily_tokens = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Tokens (prompt + reply) a day. Empty: the default; 0: no limit.",
    )

    class Meta:
        abstract = True


class UserQuota(QuotaFields):
    """A user's own limits; they win over the groups' and the site's defaults."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota"
    )

    class Meta:
        verbose_name = "daily quota"

    def __str__(self):
        return f"quota of {self.user}"


class GroupQuota(QuotaFields):
    """Limits for the members of a group without limits of their own; a member of
    several groups gets the most generous one."""

    group = models.OneToOneField(
        "auth.Group", on_delete=models.CASCADE, related_name="quota"
    )

    class Meta:
        verbose_name = "daily quota"

    def __str__(self):
        return f"quota of {self.group}"
