"""REST conversations: listing, search, paging, changes, deletion, export and import,
with each user seeing only their own."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from chat import tree
from chat.models import Conversation, Message


@pytest.fixture
def ada(make_user):
    return make_user("ada")


@pytest.fixture
def client_for(make_key):
    """A test client that authenticates with a fresh API key of `user`."""

    def make(user) -> Client:
        return Client(headers={"Authorization": f"Bearer {make_key(user)}"})

    return make


@pytest.fixture
def api(ada, client_for):
    return client_for(ada)


def chat(owner, title="", *texts: str) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, title=title)
    for n, text in enumerate(texts):
        role = "user" if n % 2 == 0 else "assistant"
        Message.objects.create(conversation=conversation, role=role, content=text)
    return conversation


def test_anonymous_gets_401_json():
    """Without a key or a session the API answers 401 with a JSON error."""
    response = Client().get("/api/conversations")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_a_revoked_key_is_refused(ada, make_key, api):
    """Revoking a key refuses it at once."""
    raw = make_key(ada)
    ada.api_keys.update(revoked_at="2024-01-01T00:00Z")
    response = Client(headers={"Authorization": f"Bearer {raw}"}).get(
        "/api/conversations"
    )
    assert response.status_code == 401


def test_list_shows_only_own_conversations_with_last_status(ada, make_user, api):
    """The list holds the caller's conversations, newest first, with the reply status."""
    mine = chat(ada, "mine", "hi", "hello")
    chat(make_user("bob"), "theirs", "hi")
    body = api.get("/api/conversations").json()
    assert body["count"] == 1
    item = body["items"][0]
    assert (item["id"], item["title"], item["last_status"]) == (
        mine.pk,
        "mine",
        "complete",
    )
    assert set(item) >= {"created_at", "updated_at", "system_prompt", "temperature"}


def test_list_search_matches_titles_and_message_text(ada, api):
    """`q` finds a conversation by a word of its title or of its messages."""
    by_title = chat(ada, "Gardening tips")
    by_text = chat(ada, "Misc", "how do I prune roses?")
    chat(ada, "Other", "nothing here")

    def ids(q: str) -> set[int]:
        items = api.get("/api/conversations", {"q": q}).json()["items"]
        return {c["id"] for c in items}

    assert ids("garden") == {by_title.pk}
    assert ids("ROSES") == {by_text.pk}


def test_list_is_paginated(ada, api):
    """page and page_size slice the list; count is the total."""
    for n in range(5):
        chat(ada, f"c{n}")
    body = api.get("/api/conversations", {"page": 2, "page_size": 2}).json()
    assert body["count"] == 5 and len(body["items"]) == 2 and body["page"] == 2


def test_create_then_detail(api):
    """A created conversation can be read back with its message count."""
    created = api.post(
        "/api/conversations", {"title": "New"}, content_type="application/json"
    )
    assert created.status_code == 201
    detail = api.get(f"/api/conversations/{created.json()['id']}").json()
    assert detail["title"] == "New" and detail["message_count"] == 0


def test_another_users_conversation_is_404_like_an_unknown_one(make_user, api):
    """Someone else's id and a missing id get the same 404 answer."""
    theirs = chat(make_user("bob"), "secret", "hi")
    other = api.get(f"/api/conversations/{theirs.pk}")
    missing = api.get("/api/conversations/999999")
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()
    assert api.delete(f"/api/conversations/{theirs.pk}").status_code == 404
    assert Conversation.objects.filter(pk=theirs.pk).exists()


def test_patch_renames_and_changes_only_the_fields_sent(ada, api):
    """PATCH changes the fields given and leaves the others."""
    conversation = chat(ada, "Old")
    conversation.system_prompt = "Keep me"
    conversation.save()
    response = api.patch(
        f"/api/conversations/{conversation.pk}",
        {"title": "  New  ", "temperature": 0.2},
        content_type="application/json",
    )
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.title, conversation.temperature) == ("New", 0.2)
    assert conversation.system_prompt == "Keep me"


@pytest.mark.parametrize(
    "body",
    [{"temperature": 7}, {"top_p": "high"}, {"colour": "red"}, {"max_tokens": 0}],
)
def test_patch_refuses_bad_settings(ada, api, body):
    """Out-of-range, mistyped or unknown settings are a 400 and change nothing."""
    conversation = chat(ada, "Same")
    response = api.patch(
        f"/api/conversations/{conversation.pk}", body, content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["code"] == "bad_request"
    conversation.refresh_from_db()
    assert conversation.temperature is None and conversation.title == "Same"


def test_delete_removes_the_conversation_and_messages(ada, api):
    """DELETE answers 204 and the rows are gone."""
    conversation = chat(ada, "Bye", "a", "b")
    assert api.delete(f"/api/conversations/{conversation.pk}").status_code == 204
    assert not Message.objects.exists()


def test_messages_are_paged_oldest_first_with_the_payload(ada, api):
    """Messages come in order, as chat.protocol.message_payload gives them."""
    conversation = chat(ada, "Talk", "one", "**two**", "three")
    body = api.get(
        f"/api/conversations/{conversation.pk}/messages", {"page_size": 2}
    ).json()
    assert body["count"] == 3
    assert [m["content"] for m in body["items"]] == ["one", "**two**"]
    assert "<strong>two</strong>" in body["items"][1]["html"]


def test_every_page_holds_the_right_messages_read_from_either_end(ada, api):
    """Pages past the middle are read backwards: the same messages, in order, even when
    many share one created_at (the id breaks ties)."""
    conversation = Conversation.objects.create(owner=ada, title="long")
    moment = conversation.created_at
    tree.bulk_append(
        conversation,
        [
            Message(
                conversation=conversation,
                role="user",
                content=f"m{n}",
                created_at=moment,
            )
            for n in range(23)
        ],
    )
    url = f"/api/conversations/{conversation.pk}/messages"
    pages = [api.get(url, {"page": p, "page_size": 5}).json() for p in range(1, 7)]
    contents = [[m["content"] for m in page["items"]] for page in pages]
    assert sum(contents, []) == [f"m{n}" for n in range(23)]
    assert [len(c) for c in contents] == [5, 5, 5, 5, 3, 0]
    assert {page["count"] for page in pages} == {23}


def test_export_json_and_markdown_downloads(ada, api):
    """Both export formats download as attachments of the right type."""
    conversation = chat(ada, "Export me", "question", "answer")
    as_json = api.get(f"/api/conversations/{conversation.pk}/export")
    assert as_json["Content-Type"].startswith("application/json")
    assert "attachment" in as_json["Content-Disposition"]
    assert [m["content"] for m in json.loads(as_json.content)["messages"]] == [
        "question",
        "answer",
    ]
    as_md = api.get(
        f"/api/conversations/{conversation.pk}/export", {"format": "markdown"}
    )
    assert as_md["Content-Type"].startswith("text/markdown")
    assert as_md.content.decode().startswith("# Export me")


def test_import_creates_a_conversation_from_an_export(ada, api):
    """An exported file uploaded again becomes a new conversation of the caller."""
    conversation = chat(ada, "Twice", "question", "answer")
    exported = api.get(f"/api/conversations/{conversation.pk}/export").content
    upload = SimpleUploadedFile("c.json", exported, content_type="application/json")
    response = api.post("/api/conversations/import", {"file": upload})
    assert response.status_code == 201
    copy = Conversation.objects.get(pk=response.json()["id"])
    assert copy.title == "Twice" and copy.messages.count() == 2


def test_import_refuses_an_oversized_file(api, settings):
    """A file over CHAT_MAX_IMPORT_BYTES is a 400 and stores nothing."""
    settings.CHAT_MAX_IMPORT_BYTES = 10
    upload = SimpleUploadedFile("c.json", b"{" + b" " * 20 + b"}")
    response = api.post("/api/conversations/import", {"file": upload})
    assert (
        response.status_code == 400
        and "larger than 10 bytes" in response.json()["message"]
    )
    assert not Conversation.objects.exists()


def test_session_auth_enforces_csrf_on_unsafe_methods(ada):
    """A logged-in browser needs the CSRF token to change anything, not to read."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(ada)
    assert browser.get("/api/conversations").status_code == 200
    refused = browser.post("/api/conversations", {}, content_type="application/json")
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    token = "k" * 32  # a CSRF secret as the cookie holds it; the header repeats it
    browser.cookies["csrftoken"] = token
    allowed = browser.post(
        "/api/conversations",
        {},
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert allowed.status_code == 201
