"""Conversations and their messages; the app's other models are imported here."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from chat.api.models import ApiKey  # noqa: F401  (the keys scripts log in with)
from chat.pool.models import Backend  # noqa: F401  (the KoboldCpp servers)
from chat.rendering import render_markdown
from chat.replies.models import Handover  # noqa: F401  (the hand-overs of replies)
from chat.usage.models import (  # noqa: F401  (the usage models belong to this app)
    DailyUsage,
    GroupQuota,
    UsageEntry,
    UserQuota,
)


class ConversationQuerySet(models.QuerySet):
    def owned_by(self, user):
        return self.filter(owner=user)

    def search(self, term: str):
        # No stored text holds a NUL (they are refused), and PostgreSQL refuses one in
        # a query: it matches nothing, so it is left out.
        term = (term or "").replace("\x00", "").strip()
        if not term:
            return self
        return self.filter(
            models.Q(title__icontains=term)
            | models.Q(messages__content__icontains=term)
        ).distinct()

    def with_last_status(self):
        """Annotated with `last_status`: the status of the latest assistant message."""
        latest = Message.objects.filter(
            conversation=models.OuterRef("pk"), role=Message.Role.ASSISTANT
        ).order_by("-created_at", "-id")
        return self.annotate(last_status=models.Subquery(latest.values("status")[:1]))


class Conversation(models.Model):
    class Source(models.TextChoices):
        PAGE = "page"
        API = "api"  # the OpenAI-compatible endpoint (chat.gateway)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    system_prompt = models.TextField(blank=True)
    temperature = models.FloatField(null=True, blank=True)
    top_p = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    show_thinking = models.BooleanField(
        default=True, help_text="Show the model's thinking (folded) above its answers."
    )
    # none, minimal, low or medium (a backend that bounds thinking); "": as it likes
    reasoning_effort = models.CharField(max_length=8, blank=True)
    model = models.CharField(
        max_length=200,
        blank=True,
        help_text="Only backends serving this model write its replies (empty: any).",
    )
    # The end of the branch shown: the path from the root to it is the conversation as
    # the page and the model see it; the other branches stay stored (chat/tree.py).
    current_leaf = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(
        max_length=8, choices=Source.choices, default=Source.PAGE, db_index=True
    )
    api_key = models.ForeignKey(  # the key whose API exchanges this keeps
        "chat.ApiKey",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conversations",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-updated_at"], name="conv_owner_recent")
        ]

    def __str__(self):
        return self.title or f"Conversation {self.pk}"


class MessageQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(status__in=Message.PENDING_STATUSES)


class Message(models.Model):
    class Role(models.TextChoices):
        SYSTEM = "system"
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        QUEUED = "queued"
        STREAMING = "streaming"
        COMPLETE = "complete"
        STOPPED = "stopped"
        ERROR = "error"
        INTERRUPTED = "interrupted"

    class IntentSource(models.TextChoices):
        HEURISTIC = "heuristic"
        LLM = "llm"
        FALLBACK = "fallback"
        API = "api"  # none chosen: the API caller's messages, as given

    PENDING_STATUSES = (Status.QUEUED, Status.STREAMING)

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    # The message it answers or follows (None for the first): the conversation is a
    # tree; siblings are the alternatives of a reply or the edits of a user message.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    depth = models.PositiveIntegerField(default=0, help_text="0 for the first message.")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    reasoning = models.TextField(
        blank=True, help_text="The model's thinking before its answer, kept apart."
    )
    reasoning_ms = models.PositiveIntegerField(
        "thinking time (ms)", null=True, blank=True
    )
    html = models.TextField(
        blank=True,
        help_text="The reply as sanitized HTML, stored once when it settles.",
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.COMPLETE
    )
    intent = models.CharField(max_length=32, blank=True)
    intent_source = models.CharField(
        max_length=16, choices=IntentSource.choices, blank=True
    )
    genkey = models.CharField(max_length=64, blank=True)
    finish_reason = models.CharField(max_length=16, blank=True)
    token_count = models.PositiveIntegerField(
        null=True, blank=True, help_text="Tokens of the content, as the model counts."
    )
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(
        "time to first token (ms)", null=True, blank=True
    )
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    backend = models.ForeignKey(
        Backend,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replies",
    )
    model = models.CharField(
        max_length=200, blank=True, help_text="The model that wrote it, as it is named."
    )
    backend_attempts = models.CharField(
        max_length=300, blank=True, help_text="Each backend tried and how it went."
    )
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["conversation", "created_at", "id"], name="msg_conv_order"
            ),
            models.Index(
                fields=["status", "heartbeat_at"], name="msg_status_heartbeat"
            ),
            models.Index(fields=["created_at"], name="msg_created"),
        ]

    def __str__(self):
        return f"{self.role} #{self.pk} ({self.status})"

    starts_root = False  # set on an unsaved edit of a first message: a new root

    def save(self, *args, **kwargs):
        """A new message without a parent follows the end of the branch shown (so that
        any writer, an import or a script included, keeps the path whole), and every new
        message becomes the end of the branch shown."""
        adding = self._state.adding
        if adding and self.parent_id is None and not self.starts_root:
            parent = self._shown_leaf()
            if parent is not None:
                self.parent, self.depth = parent, parent.depth + 1
        super().save(*args, **kwargs)
        if adding:
            Conversation.objects.filter(pk=self.conversation_id).update(
                current_leaf_id=self.pk
            )

    def _shown_leaf(self) -> "Message | None":
        shown = Conversation.objects.filter(pk=self.conversation_id)
        leaf_id = shown.values_list("current_leaf_id", flat=True).first()
        rows = Message.objects.filter(conversation_id=self.conversation_id)
        return (
            rows.filter(pk=leaf_id).first() if leaf_id else rows.order_by("-id").first()
        )

    def display_html(self) -> str:
        """A reply's content as sanitized HTML: the stored rendering of a settled reply, so
        a history page renders no markdown; rendered here while the reply is pending, or
        when nothing was stored (a reply interrupted by a crash)."""
        if self.role != self.Role.ASSISTANT:
            return ""
        if self.html and not self.is_pending:
            return self.html
        return render_markdown(self.content)

    @property
    def tokens_per_s(self) -> float | None:
        """Generation speed after the first token, when it can be known."""
        if not self.completion_tokens or not self.duration_ms:
            return None
        generating_ms = self.duration_ms - (self.ttft_ms or 0)
        if generating_ms <= 0:
            return None
        return round(self.completion_tokens * 1000 / generating_ms, 2)

    @property
    def is_pending(self) -> bool:
        return self.status in self.PENDING_STATUSES

    def metrics(self) -> dict:
        return {
            "ttft_ms": self.ttft_ms,
            "tokens_per_s": self.tokens_per_s,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "duration_ms": self.duration_ms,
            "reasoning_ms": self.reasoning_ms,
        }
