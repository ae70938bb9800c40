"""The staff's read-only view of every conversation: lists with counts and statuses in a
constant number of queries, a bounded transcript, exports, and API keys shown once."""

from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from chat import exports, services, tree
from chat.models import ApiKey, Conversation, Message

TRANSCRIPT_LIMIT = 200


class ReadOnlyMixin:
    """History is read, never written, from the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LastReplyStatusFilter(admin.SimpleListFilter):
    title = "last reply status"
    parameter_name = "last_status"

    def lookups(self, request, model_admin):
        return Message.Status.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(last_status=self.value())
        return queryset


class LatestMessagesFormSet(BaseInlineFormSet):
    """Only the last TRANSCRIPT_LIMIT messages of the branch shown, in order, each with
    its alternatives (`other_versions`): a 10,000-message conversation opens as fast as
    a short one, in a constant number of queries."""

    def get_queryset(self):
        if not hasattr(self, "_latest"):
            leaf = tree.leaf_id(self.instance) if self.instance.pk else None
            ids = tree.path_ids(leaf, limit=TRANSCRIPT_LIMIT)
            self._latest = self.queryset.filter(pk__in=ids).order_by("depth")
            shown = list(self._latest)  # the formset's forms reuse these objects
            siblings = tree.siblings_of(shown)
            others = {pk for group in siblings.values() for pk in group} - set(ids)
            rows = Message.objects.in_bulk(others) if others else {}
            for message in shown:
                message.other_versions = [
                    rows[pk] for pk in siblings.get(message.pk, []) if pk in rows
                ]
        return self._latest


class TranscriptInline(ReadOnlyMixin, admin.TabularInline):
    model = Message
    formset = LatestMessagesFormSet
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = f"transcript (branch shown, last {TRANSCRIPT_LIMIT} messages)"
    fields = readonly_fields = (
        "created_at",
        "role",
        "text",
        "status",
        "intent",
        "intent_source",
        "finish_reason",
        "prompt_tokens",
        "completion_tokens",
        "ttft_ms",
        "tokens_per_s",
    )

    @admin.display(description="tokens/s")
    def tokens_per_s(self, message: Message):
        return message.tokens_per_s

    @admin.display(description="content")
    def text(self, message: Message):
        """The answer, with the model's thinking folded above it and the message's
        alternatives (other replies, or edits) folded below."""
        parts = [_text_html(message)]
        others = getattr(message, "other_versions", [])
        if others:
            parts.append(
                format_html(
                    "<details><summary>{} other version(s)</summary>{}</details>",
                    len(others),
                    format_html_join(
                        "", "<hr><div>{}</div>", ((_text_html(m),) for m in others)
                    ),
                )
            )
        return format_html_join("", "{}", ((part,) for part in parts))


def _text_html(message: Message) -> str:
    if not message.reasoning:
        return format_html(
            '<div style="white-space: pre-wrap">{}</div>', message.content
        )
    return format_html(
        "<details><summary>Thinking</summary>"
        '<div style="white-space: pre-wrap">{}</div></details>'
        '<div style="white-space: pre-wrap">{}</div>',
        message.reasoning,
        message.content,
    )


def _download(content: str, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "title_or_id",
        "owner",
        "message_count",
        "last_activity",
        "last_status",
    )
    list_select_related = ("owner",)
    search_fields = ("title", "owner__username", "messages__content")
    list_filter = ("owner", "created_at", "updated_at", LastReplyStatusFilter)
    date_hierarchy = "updated_at"
    fields = (
        "owner",
        "title",
        "system_prompt",
        "temperature",
        "top_p",
        "max_tokens",
        "created_at",
        "updated_at",
        "all_messages",
    )
    readonly_fields = ("created_at", "all_messages")
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
            '<a href="{}?conversation__id__exact={}">All {} messages of this '
            "conversation</a>",
            url,
            conversation.pk,
            conversation.messages.count(),
        )

    @admin.action(description="Export selected conversations as JSON")
    def export_json(self, request, queryset):
        content = exports.export_json_many(exports.with_messages(queryset))
        return _download(content, "application/json", "conversations.json")

    @admin.action(description="Export selected conversations as Markdown")
    def export_markdown(self, request, queryset):
        content = exports.export_markdown_many(exports.with_messages(queryset))
        return _download(content, "text/markdown", "conversations.md")


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
        "created_at",
    )
    list_select_related = ("conversation__owner",)
    list_filter = ("status", "role", "intent", "intent_source", "finish_reason")
    search_fields = ("content",)
    date_hierarchy = "created_at"
    raw_id_fields = ("conversation",)
    exclude = ("genkey", "html")
    readonly_fields = ("tokens_per_s",)

    @admin.display(description="owner", ordering="conversation__owner__username")
    def owner(self, message: Message):
        return message.conversation.owner

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
        "active",
    )
    list_select_related = ("user",)
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    raw_id_fields = ("user",)
    actions = ("revoke",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name")
        return (
            "user",
            "name",
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
