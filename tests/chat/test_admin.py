"""The Django admin: staff read every conversation (constant query counts, a bounded
transcript, exports, escaped model output); nobody edits history; keys shown once."""

import json

import pytest
from django.contrib import admin as django_admin
from django.test import Client

from chat import tree
from chat.models import ApiKey, Conversation, Message
from chat.staff.transcript import TRANSCRIPT_LIMIT

CHANGELIST = "/admin/chat/conversation/"
MESSAGES = "/admin/chat/message/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Users are made by the dozen here; the real hasher would take most of the time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def chat(owner, title: str, *texts: str, status: str = "complete") -> Conversation:
    conversation = Conversation.objects.create(owner=owner, title=title)
    tree.bulk_append(
        conversation,
        [
            Message(
                conversation=conversation,
                role="user" if n % 2 == 0 else "assistant",
                content=text,
                status="complete" if n % 2 == 0 else status,
            )
            for n, text in enumerate(texts)
        ],
    )
    return conversation


def shown_titles(response) -> set[str]:
    return {str(c) for c in response.context["cl"].result_list}


def test_staff_see_every_users_conversations(admin_client, make_user):
    """The changelist lists conversations of all owners with counts and status."""
    chat(make_user("ada"), "Ada's", "q", "a")
    chat(make_user("bob"), "Bob's", "q", "a", "q", status="error")
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert shown_titles(response) == {"Ada's", "Bob's"}
    rows = {
        str(c): (c._message_count, c.last_status)
        for c in response.context["cl"].result_list
    }
    assert rows == {"Ada's": (2, "complete"), "Bob's": (3, "error")}


def test_non_staff_are_refused(make_user):
    """A logged-in user without is_staff is sent to the admin login."""
    client = Client()
    client.force_login(make_user("ada"))
    response = client.get(CHANGELIST)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize("page_size", [5, 50])
def test_changelists_run_a_constant_number_of_queries(
    admin_client, make_user, django_assert_max_num_queries, page_size
):
    """Conversation and message lists cost the same number of queries at any page size."""
    for n in range(page_size):
        chat(make_user(), f"c{n}", "q", "a")
    conversation_admin = django_admin.site._registry[Conversation]
    message_admin = django_admin.site._registry[Message]
    sizes = (conversation_admin.list_per_page, message_admin.list_per_page)
    conversation_admin.list_per_page = message_admin.list_per_page = page_size
    try:
        with django_assert_max_num_queries(12):
            assert admin_client.get(CHANGELIST).status_code == 200
        with django_assert_max_num_queries(12):
            assert admin_client.get(MESSAGES).status_code == 200
    finally:
        conversation_admin.list_per_page, message_admin.list_per_page = sizes


def test_a_conversation_of_ten_thousand_messages_opens_quickly(
    admin_client, make_user, django_assert_max_num_queries
):
    """The transcript holds only the latest messages and links to all of them, in a
    few queries whatever the length (the speed itself is measured in bench/)."""
    texts = [f"message {n}" for n in range(10_000)]
    conversation = chat(make_user("ada"), "Long", *texts)
    with django_assert_max_num_queries(22):  # the path, the page, the alternatives
        response = admin_client.get(f"{CHANGELIST}{conversation.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "message 9999" in page and "message 9799" not in page
    shown = [text for text in texts[-TRANSCRIPT_LIMIT - 5 :] if f"{text}<" in page]
    assert len(shown) == TRANSCRIPT_LIMIT
    assert f"{MESSAGES}?conversation__id__exact={conversation.pk}" in page


def test_search_matches_title_owner_and_message_content(admin_client, make_user):
    """Search finds by title, by owner username and by words in messages."""
    chat(make_user("ada"), "Roses", "q")
    chat(make_user("bob"), "Tulips", "what about daffodils")
    chat(make_user("carol"), "Other", "nothing")

    def search(term: str) -> set[str]:
        return shown_titles(admin_client.get(CHANGELIST, {"q": term}))

    assert search("roses") == {"Roses"}
    assert search("bob") == {"Tulips"}
    assert search("daffodil") == {"Tulips"}


def test_filters_by_last_reply_status_and_owner(admin_client, make_user):
    """The status filter uses the latest reply; the owner filter the owner."""
    ada = make_user("ada")
    chat(ada, "Fine", "q", "a")
    chat(make_user("bob"), "Broken", "q", "a", status="error")
    errors = admin_client.get(CHANGELIST, {"last_status": "error"})
    assert shown_titles(errors) == {"Broken"}
    owned = admin_client.get(CHANGELIST, {"owner__id__exact": ada.pk})
    assert shown_titles(owned) == {"Fine"}


def test_message_filters_and_search(admin_client, make_user):
    """MessageAdmin filters by status and intent source, and searches content."""
    conversation = chat(make_user(), "c", "hello there", "oops", status="error")
    Message.objects.filter(role="assistant").update(intent_source="fallback")
    by_status = admin_client.get(MESSAGES, {"status__exact": "error"})
    assert [m.content for m in by_status.context["cl"].result_list] == ["oops"]
    by_source = admin_client.get(MESSAGES, {"intent_source__exact": "fallback"})
    assert [m.content for m in by_source.context["cl"].result_list] == ["oops"]
    found = admin_client.get(MESSAGES, {"q": "hello"})
    assert [m.conversation_id for m in found.context["cl"].result_list] == [
        conversation.pk
    ]


def test_exports_parse_as_json_and_read_as_markdown(admin_client, make_user):
    """Both admin actions download the selected conversations in the REST formats."""
    first = chat(make_user(), "First", "q1", "a1")
    second = chat(make_user(), "Second", "q2", "a2")
    selected = {"_selected_action": [first.pk, second.pk]}
    as_json = admin_client.post(CHANGELIST, {"action": "export_json", **selected})
    document = json.loads(as_json.content)
    assert {c["title"] for c in document["conversations"]} == {"First", "Second"}
    assert all(
        c["format"] == "koboldchat.conversation" for c in document["conversations"]
    )
    as_md = admin_client.post(CHANGELIST, {"action": "export_markdown", **selected})
    text = as_md.content.decode()
    assert as_md["Content-Type"].startswith("text/markdown")
    assert "# First" in text and "# Second" in text and "## Assistant" in text


def test_model_html_stays_escaped(admin_client, make_user):
    """A reply containing HTML is shown as text on the change pages, never as markup."""
    evil = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    conversation = chat(make_user(), "XSS", "q", evil)
    message = conversation.messages.get(role="assistant")
    for url in (
        f"{CHANGELIST}{conversation.pk}/change/",
        f"{MESSAGES}{message.pk}/change/",
        MESSAGES,
    ):
        page = admin_client.get(url).content.decode()
        assert "<script>alert(" not in page and "<img src=x" not in page
        assert "&lt;script&gt;" in page


def test_history_cannot_be_added_changed_or_deleted(admin_client, make_user):
    """Even a superuser can only read messages and conversations."""
    conversation = chat(make_user(), "Keep", "q", "a")
    message = conversation.messages.first()
    assert admin_client.get(f"{MESSAGES}add/").status_code == 403
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    changed = admin_client.post(
        f"{MESSAGES}{message.pk}/change/", {"content": "edited"}
    )
    assert changed.status_code == 403
    assert admin_client.post(f"{MESSAGES}{message.pk}/delete/").status_code == 403
    message.refresh_from_db()
    assert message.content == "q"


def test_creating_a_key_shows_it_once(admin_client, make_user):
    """The add form shows the raw key in a message; the change page never shows it."""
    ada = make_user("ada")
    response = admin_client.post(
        "/admin/chat/apikey/add/", {"user": ada.pk, "name": "ci"}, follow=True
    )
    shown = [str(m) for m in response.context["messages"]]
    raw = next(
        word for text in shown for word in text.split() if word.startswith("kc_")
    )
    assert ApiKey.user_for(raw) == ada
    key = ApiKey.objects.get(user=ada)
    page = admin_client.get(f"/admin/chat/apikey/{key.pk}/change/").content.decode()
    assert raw not in page and key.key_hash not in page


def test_revoke_action_revokes_the_selected_keys(admin_client, make_user):
    """The revoke action makes the key unusable."""
    ada = make_user("ada")
    key, raw = ApiKey.generate(user=ada)
    admin_client.post(
        "/admin/chat/apikey/", {"action": "revoke", "_selected_action": [key.pk]}
    )
    assert ApiKey.user_for(raw) is None
