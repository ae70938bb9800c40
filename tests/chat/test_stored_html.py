"""A settled reply's HTML is rendered once and stored: history pages and the API read it
instead of rendering markdown for every message on every view."""

import json

import pytest

from chat import exports
from chat.models import Conversation, Message
from chat.replies import exchanges, handover

pytestmark = pytest.mark.django_db

STORED = "<p>stored rendering</p>"


@pytest.fixture
def owner(make_user):
    return make_user("alice")


def reply(owner, content="**bold**", html=STORED, status=Message.Status.COMPLETE):
    conversation = Conversation.objects.create(owner=owner, title="t")
    Message.objects.create(conversation=conversation, role="user", content="hi")
    return Message.objects.create(
        conversation=conversation,
        role="assistant",
        content=content,
        html=html,
        status=status,
    )


def test_the_page_and_the_api_show_the_stored_html(client, owner, make_key):
    """The stored rendering is what is shown: nothing is rendered again per view."""
    message = reply(owner)
    client.force_login(owner)
    page = client.get(f"/?c={message.conversation_id}").content.decode()
    assert STORED in page and "<strong>bold</strong>" not in page
    api = client.get(
        f"/api/conversations/{message.conversation_id}/messages",
        headers={"authorization": f"Bearer {make_key(owner)}"},
    ).json()
    assert [m["html"] for m in api["items"]] == ["", STORED]


def test_without_a_stored_rendering_the_content_is_rendered(client, owner):
    """A reply settled without one (interrupted by a crash) is rendered, sanitized."""
    message = reply(owner, content="**bold** <script>x</script>", html="")
    expected = "<p><strong>bold</strong> &lt;script&gt;x&lt;/script&gt;</p>\n"
    assert message.display_html() == expected
    client.force_login(owner)
    page = client.get(f"/?c={message.conversation_id}").content.decode()
    assert "<strong>bold</strong>" in page and "<script>x" not in page


def test_a_pending_reply_never_shows_an_old_rendering(owner):
    message = reply(owner, content="grown **text**", status=Message.Status.STREAMING)
    assert message.display_html() == "<p>grown <strong>text</strong></p>\n"


@pytest.mark.parametrize("auto_continue", [True, False])
def test_continue_and_the_reaper_drop_the_old_rendering(owner, settings, auto_continue):
    """Continuing a reply makes its stored HTML stale; so does a crash mid-continuation,
    whether the reply is taken over or given up."""
    settings.CHAT_AUTO_CONTINUE = auto_continue
    message = reply(owner)
    exchanges.continuation_prepare(user=owner, conversation_id=message.conversation_id)
    message.refresh_from_db()
    assert message.html == "" and message.status == "queued"
    Message.objects.filter(pk=message.pk).update(
        html=STORED, heartbeat_at=message.created_at.replace(year=2000)
    )
    taken = handover.claim_stale(stale_seconds=1)
    message.refresh_from_db()
    assert len(taken) == auto_continue and message.html == ""
    assert message.status == ("queued" if auto_continue else "interrupted")


def test_import_renders_replies_and_ignores_html_in_the_file(owner):
    raw = json.dumps(
        {
            "format": "koboldchat.conversation",
            "version": 1,
            "messages": [
                {"role": "user", "content": "hi", "html": "<script>1</script>"},
                {"role": "assistant", "content": "*yes*", "html": "<script>2</script>"},
            ],
        }
    ).encode()
    conversation = exports.conversation_import(owner=owner, raw=raw)
    stored = list(conversation.messages.values_list("html", flat=True))
    assert stored == ["", "<p><em>yes</em></p>\n"]
