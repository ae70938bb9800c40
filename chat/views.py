"""The chat page: the sidebar, the selected conversation and its history, rendered on
the server; the live parts (socket, sidebar actions, settings) are chat/static/chat/."""

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from agents.llm_service import LLMService
from agents.profiles import supports_reasoning_effort
from chat import tree
from chat.errors import REGISTRY, error_message
from chat.models import Conversation, Message
from chat.pool.registry import models_served
from chat.rendering import render_markdown

SIDEBAR_LIMIT = 100
HISTORY_PAGE = 50
HEALTH_INTERVAL_MS = 15_000


@dataclass
class MessageView:
    """What the template needs of one message; `html` is sanitized server-side."""

    message: Message
    html: str
    siblings: list[int] = field(default_factory=list)
    staff: bool = False

    @property
    def sibling_ids(self) -> str:
        """The alternatives, oldest first, for the "‹ 2/3 ›" switch ("" when none)."""
        return ",".join(map(str, self.siblings)) if len(self.siblings) > 1 else ""

    @property
    def branch_label(self) -> str:
        if not self.sibling_ids:
            return ""
        index = self.siblings.index(self.message.pk) + 1
        return _("%(index)s/%(count)s") % {"index": index, "count": len(self.siblings)}

    @property
    def metrics_label(self) -> str:
        return metrics_label(self.message, staff=self.staff)

    @property
    def reasoning_html(self) -> str:
        """The settled reply's thinking as sanitized HTML ("" when it has none)."""
        message = self.message
        if not message.reasoning or message.is_pending:
            return ""
        return render_markdown(message.reasoning)

    @property
    def thinking_label(self) -> str:
        message = self.message
        if not message.content and not message.is_pending:
            return _("Thought, and ran out of tokens before answering")
        if message.is_pending:
            return _("Thinking…")
        if message.reasoning_ms is None:
            return _("Thought")
        seconds = max(1, round(message.reasoning_ms / 1000))
        return _("Thought for %(seconds)s s") % {"seconds": seconds}

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
    before = request.GET.get("before")
    messages, earlier = _history(current, before)
    siblings = tree.siblings_of(messages)
    context = {
        "conversations": owned.search(query)[:SIDEBAR_LIMIT],
        "query": query,
        "current": current,
        "messages": [
            _message_view(m, siblings.get(m.pk, []), staff=request.user.is_staff)
            for m in messages
        ],
        "earlier_before": messages[0].pk if earlier else None,
        "older_page": before is not None,
        "page_config": _page_config(
            current, latest_page=before is None, staff=request.user.is_staff
        ),
        "reasoning_effort_supported": reasoning_effort_supported(),
        "served_models": models_served(),
    }
    return render(request, "chat/index.html", context)


def _history(current: Conversation | None, before: str | None):
    """The last HISTORY_PAGE messages of the branch shown (those before message id
    `before`, if given), oldest first, and whether there are earlier ones: a long
    conversation opens quickly."""
    if current is None:
        return [], False
    leaf = tree.leaf_id(current)
    if before is not None:
        try:
            leaf = current.messages.values_list("parent_id", flat=True).get(
                pk=int(before)
            )
        except (ValueError, OverflowError, Message.DoesNotExist) as exc:
            raise Http404("No such page.") from exc
    rows = tree.path_messages(leaf, limit=HISTORY_PAGE + 1)
    earlier = len(rows) > HISTORY_PAGE
    page = [m for m in rows[-HISTORY_PAGE:] if m.role != Message.Role.SYSTEM]
    return page, earlier


def reasoning_effort_supported() -> bool:
    """Whether the backend, as far as this process knows it yet, bounds thinking; the
    setting is hidden where it would be ignored."""
    service = LLMService.from_settings()
    return supports_reasoning_effort(service.version if service.is_koboldcpp else None)


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


def _message_view(message: Message, siblings: list[int], *, staff) -> MessageView:
    # A reply still being written is shown as plain text until the job sends its html.
    rendered = message.role == Message.Role.ASSISTANT and not message.is_pending
    html = message.display_html() if rendered else ""
    return MessageView(message=message, html=html, siblings=siblings, staff=staff)


def metrics_label(message: Message, *, staff: bool = False) -> str:
    """One line in words for the hover tooltip: when the first word came, the speed,
    the length; the intent (and how it was decided) for staff only."""
    parts = []
    if message.ttft_ms is not None:
        seconds = f"{message.ttft_ms / 1000:.1f}"
        parts.append(_("first word after %(seconds)s s") % {"seconds": seconds})
    if message.tokens_per_s is not None:
        parts.append(_("%(rate)s tokens/s") % {"rate": round(message.tokens_per_s)})
    if message.completion_tokens is not None:
        parts.append(_("%(count)s tokens") % {"count": message.completion_tokens})
    if staff and message.intent:
        parts.append(
            _("intent: %(intent)s (%(source)s)")
            % {"intent": message.intent, "source": message.intent_source or "?"}
        )
    return " · ".join(parts)


def _page_config(
    current: Conversation | None, *, latest_page: bool, staff: bool
) -> dict:
    """Rendered as a JSON data block (json_script): no inline script for a CSP to allow.
    `latestPage`: the page ends with the conversation's newest messages (not a page of
    earlier ones), so new messages and replies are added to it."""
    return {
        "isStaff": staff,
        "conversationId": current.pk if current else None,
        "showThinking": current.show_thinking if current else True,
        "latestPage": latest_page,
        "maxMessageChars": settings.CHAT_MAX_MESSAGE_CHARS,
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
        "thinking": _("Thinking…"),
        "thought": _("Thought"),
        "thought_for": _("Thought for %(seconds)s s"),
        "thought_unfinished": _("Thought, and ran out of tokens before answering"),
        "m_rate": _("%(rate)s tokens/s"),
        "m_ttft": _("first word after %(seconds)s s"),
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
        "busy_here": _("A reply is already being written in this conversation."),
        "busy_elsewhere": _("A reply is being written in “%(title)s”."),
        "go_to_it": _("Go to it"),
        "char_count": _("%(used)s / %(limit)s characters"),
        "stop_it": _("Stop it"),
        "branch_position": _("%(index)s/%(count)s"),
        "reply_ready": _("Your reply is ready"),
        "notify_refused": _("The browser does not allow notifications for this page."),
    } | {f"err_{code}": str(entry.message) for code, entry in REGISTRY.items()}
