"""API exchanges in history: one API conversation per key (source `api`), kept like the
page's and counted in the usage ledger; a key made with history off leaves nothing but
its count."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.test import Client

from chat import services
from chat.models import ApiKey, Conversation, Message, UsageEntry

pytestmark = pytest.mark.django_db(transaction=True)
MODEL = "koboldcpp"


def says(text: str) -> list[dict]:
    return [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": text},
    ]


@sync_to_async
def exchanges_of(user) -> list[tuple[str, str, str, str]]:
    return list(
        Message.objects.filter(conversation__owner=user)
        .order_by("id")
        .values_list("conversation__source", "role", "content", "status")
    )


async def test_exchanges_are_kept_in_the_keys_api_conversation(
    client, ada, kobold_settings
):
    """Each exchange (the last user message and the reply) lands in one API
    conversation of the key, source api, streamed or not; the ledger counts both."""
    await client.chat.completions.create(model=MODEL, messages=says("coucou"))
    stream = await client.chat.completions.create(
        model=MODEL, messages=says("again"), stream=True
    )
    [chunk async for chunk in stream]
    assert await exchanges_of(ada) == [
        ("api", "user", "coucou", "complete"),
        ("api", "assistant", "Hello there!", "complete"),
        ("api", "user", "again", "complete"),
        ("api", "assistant", "Hello there!", "complete"),
    ]
    conversation = await sync_to_async(
        Conversation.objects.select_related("api_key").get
    )(owner=ada)
    assert conversation.source == Conversation.Source.API
    assert conversation.api_key.name == "script"
    assert conversation.title == "API · script"
    assert await sync_to_async(UsageEntry.objects.filter(user=ada).count)() == 2
    assert (
        await sync_to_async(
            Conversation.objects.filter(source=Conversation.Source.PAGE).count
        )()
        == 0
    )


async def test_each_key_has_its_own_api_conversation(ada, make_client, kobold_settings):
    """Two keys of one user: two API conversations."""
    for name in ("one", "two"):
        raw = (await sync_to_async(ApiKey.generate)(user=ada, name=name))[1]
        await make_client(raw).chat.completions.create(model=MODEL, messages=says(name))
    titles = await sync_to_async(
        lambda: sorted(Conversation.objects.values_list("title", flat=True))
    )()
    assert titles == ["API · one", "API · two"]


async def test_a_key_without_history_keeps_only_the_count(
    ada, make_client, kobold_settings
):
    """History off: answered as usual, then nothing stored but the usage entry."""
    raw = (
        await sync_to_async(ApiKey.generate)(user=ada, name="quiet", keep_history=False)
    )[1]
    client = make_client(raw)
    answer = await client.chat.completions.create(model=MODEL, messages=says("hi"))
    assert answer.choices[0].message.content == "Hello there!"
    stream = await client.completions.create(model=MODEL, prompt="x", stream=True)
    [chunk async for chunk in stream]
    for _ in range(100):
        if not await sync_to_async(Conversation.objects.exists)():
            break
        await asyncio.sleep(0.05)
    assert not await sync_to_async(Conversation.objects.exists)()
    assert await sync_to_async(UsageEntry.objects.filter(user=ada).count)() == 2


def test_a_message_without_a_conversation_never_lands_in_an_api_one(ada):
    """The page's "latest conversation" skips the API conversations of the keys."""
    Conversation.objects.create(owner=ada, title="old chat")
    Conversation.objects.create(owner=ada, title="API · script", source="api")
    assert services.conversation_latest_or_create(user=ada).title == "old chat"


def test_keys_made_on_the_page_can_have_history_off(ada):
    """POST /api/keys with keep_history false makes a key that keeps none."""
    browser = Client()
    browser.force_login(ada)
    response = browser.post(
        "/api/keys",
        {"name": "bot", "keep_history": False},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["keep_history"] is False
    assert ApiKey.objects.get(name="bot").keep_history is False


def test_admin_filters_conversations_by_source(ada, admin_client):
    """The admin's conversation list filters on source."""
    Conversation.objects.create(owner=ada, title="from the page")
    Conversation.objects.create(owner=ada, title="by script", source="api")
    page = admin_client.get("/admin/chat/conversation/?source__exact=api")
    assert page.status_code == 200
    assert b"by script" in page.content and b"from the page" not in page.content


def test_create_api_key_no_history_makes_a_key_that_keeps_none(ada, capsys):
    """`manage.py create_api_key ada --no-history` prints a key that keeps no history."""
    call_command("create_api_key", "ada", "--name", "cron", "--no-history")
    raw = capsys.readouterr().out.strip()
    key = ApiKey.active_key_for(raw)
    assert key.name == "cron" and key.keep_history is False
