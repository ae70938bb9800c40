"""The conversation tree over REST, in export files and in the admin: the messages of the
branch shown with their alternatives, `select`, a JSON export that carries the whole tree
(and still imports version 1), Markdown with the alternatives folded."""

import json

import pytest
from django.test import Client

from chat import exports, tree
from chat.models import Conversation, Message

# async views: their own connections
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def forked(make_user):
    """Q → (A1 | A2 shown), and Q → A1 → Q2 → A3 on A1's branch."""
    user = make_user("ada")
    conversation = Conversation.objects.create(owner=user, title="forked")
    q = Message.objects.create(conversation=conversation, role="user", content="Q")
    a1 = Message.objects.create(
        conversation=conversation, role="assistant", content="A1"
    )
    q2 = Message.objects.create(conversation=conversation, role="user", content="Q2")
    a3 = Message.objects.create(
        conversation=conversation, role="assistant", content="A3"
    )
    a2 = Message.objects.create(
        conversation=conversation, role="assistant", content="A2", parent=q, depth=1
    )
    conversation.refresh_from_db()
    assert conversation.current_leaf_id == a2.pk  # a new message is shown
    rows = {"Q": q, "A1": a1, "Q2": q2, "A3": a3, "A2": a2}
    return user, conversation, rows


@pytest.fixture
def api(forked, make_key):
    user = forked[0]
    return Client(headers={"authorization": f"Bearer {make_key(user)}"})


def test_messages_are_the_branch_shown_with_their_alternatives(forked, api):
    _, conversation, rows = forked
    body = api.get(f"/api/conversations/{conversation.pk}/messages").json()
    assert body["count"] == 2
    assert [m["content"] for m in body["items"]] == ["Q", "A2"]
    reply = body["items"][1]
    assert reply["parent_id"] == rows["Q"].pk
    assert reply["sibling_ids"] == [rows["A1"].pk, rows["A2"].pk]
    assert reply["sibling_index"] == 1


def test_select_over_rest_shows_the_newest_of_that_branch(forked, api):
    _, conversation, rows = forked
    url = f"/api/conversations/{conversation.pk}/select"
    answer = api.post(
        url, {"message_id": rows["A1"].pk}, content_type="application/json"
    )
    assert answer.status_code == 200, answer.content
    path = [rows[name].pk for name in ("Q", "A1", "Q2", "A3")]
    assert answer.json()["path"] == path
    body = api.get(f"/api/conversations/{conversation.pk}/messages").json()
    assert [m["content"] for m in body["items"]] == ["Q", "A1", "Q2", "A3"]


def test_select_is_refused_for_a_message_elsewhere_and_while_busy(forked, api):
    user, conversation, rows = forked
    other = Conversation.objects.create(owner=user, title="other")
    stray = Message.objects.create(conversation=other, role="user", content="x")
    url = f"/api/conversations/{conversation.pk}/select"
    answer = api.post(url, {"message_id": stray.pk}, content_type="application/json")
    assert answer.status_code == 404  # as for a message that does not exist
    Message.objects.filter(pk=rows["A2"].pk).update(status=Message.Status.STREAMING)
    answer = api.post(
        url, {"message_id": rows["A1"].pk}, content_type="application/json"
    )
    assert answer.status_code == 409 and answer.json()["code"] == "busy"
    conversation.refresh_from_db()
    assert conversation.current_leaf_id == rows["A2"].pk


def test_json_export_carries_the_tree_and_imports_it_back(forked):
    user, conversation, rows = forked
    document = json.loads(exports.export_json(_loaded(conversation)))
    assert document["version"] == 2 and len(document["messages"]) == 5
    copy = exports.conversation_import(owner=user, raw=json.dumps(document).encode())
    texts = [m.content for m in tree.path_messages(copy.current_leaf_id)]
    assert texts == ["Q", "A2"]
    a1 = copy.messages.get(content="A1")
    below = Message.objects.get(pk=tree.newest_descendant(a1.pk))
    assert below.content == "A3" and below.depth == 3


def test_a_version_1_file_still_imports_as_one_path(make_user):
    user = make_user("bob")
    document = {
        "format": "koboldchat.conversation",
        "version": 1,
        "title": "old",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "bye"},
        ],
    }
    copy = exports.conversation_import(owner=user, raw=json.dumps(document).encode())
    texts = [m.content for m in tree.path_messages(copy.current_leaf_id)]
    assert texts == ["hi", "hello", "bye"]


def test_a_version_2_file_with_a_dangling_parent_is_refused(make_user):
    from chat.errors import ChatError

    document = {
        "format": "koboldchat.conversation",
        "version": 2,
        "messages": [{"id": 1, "parent": 7, "role": "user", "content": "x"}],
    }
    with pytest.raises(ChatError) as refused:
        exports.conversation_import(
            owner=make_user("eve"), raw=json.dumps(document).encode()
        )
    assert "parent" in refused.value.message


def test_markdown_shows_the_branch_with_the_alternatives_folded(forked):
    _, conversation, _ = forked
    text = exports.export_markdown(_loaded(conversation))
    assert text.index("\nQ\n") < text.index("\nA2\n")
    assert "<details><summary>Other replies (1)</summary>" in text
    assert "\nA1\n" in text  # folded, under the reply shown
    assert "Q2" not in text and "A3" not in text  # another branch's later messages


def test_the_admin_transcript_folds_the_alternatives(forked, admin_client):
    _, conversation, _ = forked
    page = admin_client.get(
        f"/admin/chat/conversation/{conversation.pk}/change/"
    ).content.decode()
    assert "1 other version(s)" in page and "A1" in page and "A2" in page
    assert "Q2" not in page


def _loaded(conversation):
    return exports.with_messages(Conversation.objects.filter(pk=conversation.pk))[0]


def test_staff_read_the_branch_shown_as_a_conversation(forked, admin_client):
    _, conversation, rows = forked
    rows["A2"].ttft_ms = 1234
    rows["A2"].save(update_fields=["ttft_ms"])
    change = admin_client.get(f"/admin/chat/conversation/{conversation.pk}/change/")
    url = f"/admin/chat/conversation/{conversation.pk}/read/"
    assert url in change.content.decode()
    page = admin_client.get(url).content.decode()
    assert page.index(">Q<") < page.index(">A2<")
    assert "1234 ms" in page and "—" in page and "None" not in page
    assert "1 other version(s)" in page and "Q2" not in page
    assert rows["A2"].created_at.strftime("%H:%M:%S") in page


def test_the_reading_view_is_for_staff_only(forked, make_user):
    _, conversation, _ = forked
    client = Client()
    client.force_login(make_user("not-staff"))
    answer = client.get(f"/admin/chat/conversation/{conversation.pk}/read/")
    assert answer.status_code == 302 and "/login/" in answer["Location"]


def test_the_chat_page_links_staff_to_the_transcript(forked, make_user):
    owner, conversation, _ = forked
    client = Client()
    client.force_login(owner)
    link = f"/admin/chat/conversation/{conversation.pk}/read/"
    assert link not in client.get(f"/?c={conversation.pk}").content.decode()
    owner.is_staff = True
    owner.save()
    assert link in client.get(f"/?c={conversation.pk}").content.decode()


def test_a_busy_refusal_over_rest_names_the_running_reply(forked, api):
    """As the socket's error frame: `running` says where the reply is being written."""
    _, conversation, rows = forked
    Message.objects.filter(pk=rows["A2"].pk).update(status=Message.Status.STREAMING)
    answer = api.post(
        "/api/simple-chat/",
        {"message": "one more", "conversation_id": conversation.pk},
        content_type="application/json",
    )
    assert answer.status_code == 409
    body = answer.json()
    assert body["code"] == "busy"
    assert body["running"] == {
        "conversation_id": conversation.pk,
        "message_id": rows["A2"].pk,
        "title": "forked",
    }
