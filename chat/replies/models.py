"""What happened to a reply when the process writing it died: one row per hand-over
(imported by chat/models.py, so the app owns the table)."""

from django.db import models


class Handover(models.Model):
    """A reply whose job's process went silent, taken by another (or the restarted) one
    and continued from its last checkpoint; or marked interrupted when it could not be."""

    class Outcome(models.TextChoices):
        CONTINUED = "continued"
        INTERRUPTED = "interrupted"

    message = models.ForeignKey(
        "chat.Message", on_delete=models.CASCADE, related_name="handovers"
    )
    at = models.DateTimeField(auto_now_add=True)
    process = models.CharField(max_length=80, help_text="host:pid of the taker")
    checkpoint_chars = models.PositiveIntegerField(
        help_text="Characters of the answer kept from the checkpoint."
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)

    class Meta:
        app_label = "chat"
        ordering = ["at", "id"]

    def __str__(self):
        return f"reply {self.message_id} {self.outcome} by {self.process}"
