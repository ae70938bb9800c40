"""The staff's read-only view of every conversation: lists with counts and statuses in a
constant number of queries, a bounded transcript, exports, and API keys shown once."""

from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from chat import exports, services
from chat.models import ApiKey, Conversation, Handover, Message
from chat.staff.transcript import ReadOnlyMixin, TranscriptInline, reading_view


class LastReplyStatusFilter(admin.SimpleListFilter):
    title = "last reply status"
    parameter_name = "last_status"

    def lookups(self, request, model_admin):
        return Message.Status.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(last_status=self.value())
        return queryset


def _download(content: str, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "title_or_id",
        "owner",
        "source",
        "message_count",
        "last_activity",
        "last_status",
    )
    list_select_related = ("owner",)
    search_fields = ("title", "owner__username", "messages__content")
    list_filter = (
        "source",
        "owner",
        "created_at",
        "updated_at",
        LastReplyStatusFilter,
    )
    date_hierarchy = "updated_at"
    fields = (
        "owner",
        "title",
        "source",
        "api_key",
        "system_prompt",
        "temperature",
        "top_p",
        "max_tokens",
        "created_at",
        "updated_at",
        "all_messages",
    )
    readonly_fields = ("created_at", "source", "api_key", "all_messages")
    inlines = (TranscriptInline,)
    actions = ("export_json", "export_markdown")

    def get_queryset(self, request):
        counts = (
            Message.objects.filter(conversation=OuterRef("pk"))
            .order_by()
            .values("conversation")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(_message_count=Subquery(counts))
            .with_last_status()
        )

    @admin.display(description="title", ordering="title")
    def title_or_id(self, conversation: Conversation) -> str:
        return str(conversation)

    @admin.display(description="messages", ordering="_message_count")
    def message_count(self, conversation: Conversation) -> int:
        return conversation._message_count or 0

    @admin.display(description="last activity", ordering="updated_at")
    def last_activity(self, conversation: Conversation):
        return conversation.updated_at

    @admin.display(description="last reply", ordering="last_status")
    def last_status(self, conversation: Conversation) -> str:
        return conversation.last_status or "—"

    @admin.display(description="messages")
    def all_messages(self, conversation: Conversation):
        url = reverse("admin:chat_message_changelist")
        return format_html(
            '<a href="{}">Read it as a conversation</a> · <a href="{}?'
            'conversation__id__exact={}">All {} messages of this conversation</a>',
            reverse("admin:chat_conversation_read", args=[conversation.pk]),
            url,
            conversation.pk,
            conversation.messages.count(),
        )

    def get_urls(self):
        read = self.admin_site.admin_view(reading_view)
        own = [path("<int:conversation_id>/read/", read, name="chat_conversation_read")]
        return own + super().get_urls()

    @admin.action(description="Export selected conversations as JSON")
    def export_json(self, request, queryset):
        content = exports.export_json_many(exports.with_messages(queryset))
        return _download(content, "application/json", "conversations.json")

    @admin.action(description="Export selected conversations as Markdown")
    def export_markdown(self, request, queryset):
        content = exports.export_markdown_many(exports.with_messages(queryset))
        return _download(content, "text/markdown", "conversations.md")


class HandoverInline(ReadOnlyMixin, admin.TabularInline):
    """Each time the reply's process died or stopped and another one took it over."""

    model = Handover
    extra = 0
    can_delete = False
    verbose_name_plural = "hand-overs (the process writing the reply died or stopped)"
    fields = readonly_fields = ("at", "process", "checkpoint_chars", "outcome")


@admin.register(Message)
class MessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "conversation",
        "owner",
        "role",
        "excerpt",
        "status",
        "intent",
        "intent_source",
        "finish_reason",
        "backend",
        "model",
        "created_at",
    )
    list_select_related = ("conversation__owner", "backend")
    list_filter = (
        "status", "role", "intent", "intent_source", "finish_reason", "backend",
        "model",
    )  # fmt: skip
    search_fields = ("content",)
    date_hierarchy = "created_at"
    raw_id_fields = ("conversation",)
    exclude = ("genkey", "html")
    readonly_fields = ("tokens_per_s", "handover_count")
    inlines = (HandoverInline,)

    @admin.display(description="owner", ordering="conversation__owner__username")
    def owner(self, message: Message):
        return message.conversation.owner

    @admin.display(description="hand-overs")
    def handover_count(self, message: Message) -> int:
        return message.handovers.count()

    @admin.display(description="content")
    def excerpt(self, message: Message) -> str:
        return Truncator(message.content).chars(80)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "shown_prefix",
        "name",
        "user",
        "created_at",
        "last_used_at",
        "keep_history",
        "active",
    )
    list_select_related = ("user",)
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    raw_id_fields = ("user",)
    actions = ("revoke",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name", "keep_history")
        return (
            "user",
            "name",
            "keep_history",
            "shown_prefix",
            "created_at",
            "last_used_at",
            "revoked_at",
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("user", "shown_prefix", "created_at", "last_used_at", "revoked_at")

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row says who used what, and when

    @admin.display(description="key")
    def shown_prefix(self, key: ApiKey) -> str:
        return f"kc_{key.prefix}_…"

    @admin.display(description="active", boolean=True)
    def active(self, key: ApiKey) -> bool:
        return key.is_active

    def save_model(self, request, obj: ApiKey, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        key, raw = ApiKey.generate(user=obj.user, name=obj.name)
        # The admin goes on with `obj` (redirect, log entry): make it the saved row.
        obj.__dict__.update(key.__dict__)
        messages.warning(
            request,
            f"The new key is {raw} — copy it now: it is never shown again.",
        )

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset):
        count = services.api_keys_revoke(keys=queryset)
        messages.success(request, f"{count} key(s) revoked.")
