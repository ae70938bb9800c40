"""The chat page: the sidebar, the selected conversation and its history, rendered on
the server; the live parts (socket, sidebar actions, settings) are chat/static/chat/."""

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from chat.errors import REGISTRY, error_message
from chat.models import Conversation, Message

SIDEBAR_LIMIT = 100
HISTORY_PAGE = 50
HEALTH_INTERVAL_MS = 15_000


@dataclass
class MessageView:
    """What the template needs of one message; `html` is sanitized server-side."""

    message: Message
    html: str

    @property
    def metrics_label(self) -> str:
        return metrics_label(self.message)

    @property
    def error_text(self) -> str:
        if self.message.status == Message.Status.INTERRUPTED:
            return error_message("interrupted")
        return error_message(self.message.error_code) if self.message.error_code else ""


@login_required
def index(request: HttpRequest) -> HttpResponse:
    """The chat page: ?c=<id> selects a conversation, ?new=1 a blank one, ?q= filters."""
    owned = Conversation.objects.owned_by(request.user)
    query = request.GET.get("q", "").strip()
    current = _selected_conversation(request, owned)
    messages, earlier = _history(current, request.GET.get("before"))
    context = {
        "conversations": owned.search(query)[:SIDEBAR_LIMIT],
        "query": query,
        "current": current,
        "messages": [_message_view(m) for m in messages],
        "earlier_before": messages[0].pk if earlier else None,
        "page_config": _page_config(current),
    }
    return render(request, "chat/index.html", context)


def _history(current: Conversation | None, before: str | None):
    """The last HISTORY_PAGE messages (before message id `before`, if given), oldest
    first, and whether there are earlier ones: a long conversation opens quickly."""
    if current is None:
        return [], False
    rows = current.messages.exclude(role=Message.Role.SYSTEM)
    if before is not None:
        try:
            rows = rows.filter(id__lt=int(before))
        except ValueError as exc:
            raise Http404("No such page.") from exc
    page = list(rows.order_by("-created_at", "-id")[: HISTORY_PAGE + 1])
    return page[:HISTORY_PAGE][::-1], len(page) > HISTORY_PAGE


def _selected_conversation(request: HttpRequest, owned) -> Conversation | None:
    """The conversation asked for, or the most recent; another user's id is a 404."""
    if request.GET.get("new"):
        return None
    raw_id = request.GET.get("c")
    if raw_id is None:
        return owned.first()
    try:
        return owned.get(pk=int(raw_id))
    except (ValueError, Conversation.DoesNotExist) as exc:
        raise Http404("No such conversation.") from exc


def _message_view(message: Message) -> MessageView:
    # A reply still being written is shown as plain text until the job sends its html.
    rendered = message.role == Message.Role.ASSISTANT and not message.is_pending
    return MessageView(message=message, html=message.display_html() if rendered else "")


def metrics_label(message: Message) -> str:
    """One line for the hover tooltip: speed, time to first token, intent."""
    parts = []
    if message.tokens_per_s is not None:
        parts.append(_("%(rate)s tokens/s") % {"rate": message.tokens_per_s})
    if message.ttft_ms is not None:
        parts.append(_("first token after %(ms)s ms") % {"ms": message.ttft_ms})
    if message.completion_tokens is not None:
        parts.append(_("%(count)s tokens") % {"count": message.completion_tokens})
    if message.intent:
        parts.append(
            _("intent: %(intent)s (%(source)s)")
            % {"intent": message.intent, "source": message.intent_source or "?"}
        )
    return " · ".join(parts)


def _page_config(current: Conversation | None) -> dict:
    """Rendered as a JSON data block (json_script): no inline script for a CSP to allow."""
    return {
        "conversationId": current.pk if current else None,
        "wsPath": "/ws/chat/",
        "apiRoot": "/api/",
        "indexUrl": reverse("chat:index"),
        "healthIntervalMs": HEALTH_INTERVAL_MS,
        "strings": ui_strings(),
    }


def ui_strings() -> dict[str, str]:
    """Every string the JavaScript shows, translated for the request's language."""
    return {
        "waiting": _("waiting — position %(position)s"),
        "waiting_plain": _("waiting…"),
        "reading": _("reading the prompt…"),
        "writing": _("writing…"),
        "stopped": _("stopped"),
        "interrupted": _("interrupted"),
        "truncated": _("cut at the token limit"),
        "copy": _("Copy"),
        "m_rate": _("%(rate)s tokens/s"),
        "m_ttft": _("first token after %(ms)s ms"),
        "m_tokens": _("%(count)s tokens"),
        "m_intent": _("intent: %(intent)s (%(source)s)"),
        "copied": _("Copied"),
        "untitled": _("New conversation"),
        "delete_confirm": _("Delete “%(title)s” and all its messages?"),
        "revoke_confirm": _(
            "Revoke the key “%(name)s”? Scripts using it stop working."
        ),
        "not_connected": _("Not connected — reconnecting…"),
        "reconnecting": _("Connection lost — reconnecting…"),
        "saved": _("Saved"),
        "request_failed": _("The request failed (%(status)s)."),
        "no_results": _("No conversation matches."),
        "no_keys": _("No API keys yet."),
        "revoke": _("Revoke"),
        "revoked": _("revoked"),
        "last_used": _("last used %(when)s"),
        "never_used": _("never used"),
        "online": _("online"),
        "offline": _("offline"),
        "busy_backend": _("busy"),
        "checking": _("checking…"),
        "rename": _("Rename"),
        "delete": _("Delete"),
        "err_rate_limited_after": _(
            "Too many messages. Try again in %(seconds)s seconds."
        ),
        "err_unknown": _("Something went wrong."),
    } | {f"err_{code}": str(entry.message) for code, entry in REGISTRY.items()}
