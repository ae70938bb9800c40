"""The KoboldCpp servers replies are written on (imported by chat/models.py, so the app
owns the table). Rows are managed in the admin and seeded from KOBOLDCPP_URL(S)."""

from django.db import models


class BackendQuerySet(models.QuerySet):
    def enabled(self):
        return self.filter(enabled=True)


class Backend(models.Model):
    """One KoboldCpp (or OpenAI-compatible) server and how many replies it writes at
    once. An empty password means KOBOLDCPP_PASSWORD."""

    class Api(models.TextChoices):
        AUTO = "auto"
        NATIVE = "native"
        OPENAI = "openai"

    name = models.CharField(max_length=64, unique=True)
    url = models.CharField("URL", max_length=300, unique=True)
    api = models.CharField("API", max_length=8, choices=Api.choices, default=Api.AUTO)
    password = models.CharField(max_length=200, blank=True)
    slots = models.PositiveIntegerField(
        default=1, help_text="Replies it generates at once (KoboldCpp: 1)."
    )
    enabled = models.BooleanField(default=True)
    model = models.CharField(
        max_length=200, blank=True, help_text="The model it reported when last asked."
    )
    reachable = models.BooleanField(
        null=True, help_text="Whether it answered when last asked (empty: not yet)."
    )
    checked_at = models.DateTimeField(null=True, blank=True)
    # Made from KOBOLDCPP_URL(S): disabled when its URL leaves the settings.
    seeded = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BackendQuerySet.as_manager()

    class Meta:
        app_label = "chat"
        ordering = ["name", "id"]

    def __str__(self):
        return self.name

    @property
    def key(self) -> str:
        """Its name in the queue's slot counts (local and in Redis)."""
        return str(self.pk)
