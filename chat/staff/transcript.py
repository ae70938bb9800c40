"""The staff's transcript of a conversation: the inline of its change page (the last
TRANSCRIPT_LIMIT messages of the branch shown, in a constant number of queries), and a
reading view that shows the branch as a conversation, metrics beside each reply, thinking
and alternatives folded."""

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.html import format_html, format_html_join

from chat import tree
from chat.models import Conversation, Message

TRANSCRIPT_LIMIT = 200


class ReadOnlyMixin:
    """History is read, never written, from the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LatestMessagesFormSet(BaseInlineFormSet):
    """Only the last TRANSCRIPT_LIMIT messages of the branch shown, in order, each with
    its alternatives (`other_versions`): a 10,000-message conversation opens as fast as
    a short one, in a constant number of queries."""

    def get_queryset(self):
        if not hasattr(self, "_latest"):
            leaf = tree.leaf_id(self.instance) if self.instance.pk else None
            ids = tree.path_ids(leaf, limit=TRANSCRIPT_LIMIT)
            self._latest = self.queryset.filter(pk__in=ids).order_by("depth")
            _with_alternatives(list(self._latest))  # the forms reuse these objects
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


def _with_alternatives(shown: list[Message]) -> list[Message]:
    """Each message gets `other_versions`: its siblings, in two queries in all."""
    siblings = tree.siblings_of(shown)
    ids = {m.pk for m in shown}
    others = {pk for group in siblings.values() for pk in group} - ids
    rows = Message.objects.in_bulk(others) if others else {}
    for message in shown:
        message.other_versions = [
            rows[pk] for pk in siblings.get(message.pk, []) if pk in rows
        ]
    return shown


@staff_member_required
def reading_view(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """The branch shown of a conversation, read as one (?before=<id>: earlier)."""
    conversation = get_object_or_404(
        Conversation.objects.select_related("owner"), pk=conversation_id
    )
    leaf = tree.leaf_id(conversation)
    if "before" in request.GET:
        try:
            leaf = conversation.messages.values_list("parent_id", flat=True).get(
                pk=int(request.GET["before"])
            )
        except (ValueError, OverflowError, Message.DoesNotExist) as exc:
            raise Http404("No such message.") from exc
    shown = tree.path_messages(leaf, limit=TRANSCRIPT_LIMIT + 1)
    context = {
        **admin.site.each_context(request),
        "title": f"Reading {conversation}",
        "conversation": conversation,
        "messages": _with_alternatives(shown[-TRANSCRIPT_LIMIT:]),
        "earlier": shown[1].pk if len(shown) > TRANSCRIPT_LIMIT else None,
        "opts": Conversation._meta,
    }
    return render(request, "admin/chat/conversation/read.html", context)
