"""The per-conversation thinking settings: "show thinking" and the thinking effort,
which reaches the backend only as the conversation sets it, and is offered on the page
only where the backend bounds thinking (KoboldCpp 1.117 and later)."""

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from agents.llm_service import LLMService
from chat import services
from kobold_fake.server import Script
from tests.chat.conftest import frames_until, is_end, open_socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def owner(make_user):
    return make_user("thinker")


def test_the_settings_are_changed_and_checked_over_rest(owner, make_key):
    conversation = services.conversation_create(owner=owner, title="t")
    api = Client(headers={"authorization": f"Bearer {make_key(owner)}"})
    url = f"/api/conversations/{conversation.pk}"
    body = {"show_thinking": False, "reasoning_effort": "low"}
    answer = api.patch(url, body, content_type="application/json").json()
    assert (answer["show_thinking"], answer["reasoning_effort"]) == (False, "low")
    refused = api.patch(
        url, {"reasoning_effort": "high"}, content_type="application/json"
    )
    assert refused.status_code == 400
    reset = api.patch(url, {"reasoning_effort": None}, content_type="application/json")
    assert reset.json()["reasoning_effort"] == ""


async def test_the_effort_reaches_the_backend_only_when_set(
    kobold_settings, fake_kobold, owner, make_key
):
    fake_kobold.push(Script(tokens=["one"]), Script(tokens=["two"]))
    comm = await open_socket(await sync_to_async(make_key)(owner))
    await comm.send_to(text_data="first")
    first = (await frames_until(comm, is_end))[-1]
    assert "reasoning_effort" not in fake_kobold.generations[-1]
    conversation = await sync_to_async(services.conversation_get)(
        user=owner, conversation_id=first["conversation_id"]
    )
    await sync_to_async(services.conversation_update_settings)(
        conversation=conversation, reasoning_effort="minimal"
    )
    await comm.send_json_to(
        {"type": "message", "text": "second", "conversation_id": conversation.pk}
    )
    await frames_until(comm, is_end)
    assert fake_kobold.generations[-1]["reasoning_effort"] == "minimal"
    await comm.disconnect()


@pytest.mark.parametrize(("version", "offered"), [("1.76", False), ("1.117.1", True)])
def test_the_effort_is_offered_only_where_the_backend_bounds_thinking(
    settings, make_fake, owner, version, offered
):
    server = make_fake(version=version)
    settings.KOBOLDCPP_URL, settings.KOBOLDCPP_API = server.url, "native"
    service = LLMService.from_settings()
    service.version = version  # as learnt from the backend's first answer
    conversation = services.conversation_create(owner=owner, title="t")
    client = Client()
    client.force_login(owner)
    page = client.get(f"/?c={conversation.pk}").content.decode()
    field = page[page.index('id="effort-field"') :][:40]
    assert ("hidden" not in field.split(">")[0]) is offered


def test_metrics_are_in_words_and_the_intent_is_for_staff(owner, make_user):
    """The hover line says when the first word came and the speed; how the intent was
    decided is a staff matter."""
    from chat.models import Message
    from chat.views import metrics_label

    conversation = services.conversation_create(owner=owner, title="t")
    reply = Message.objects.create(
        conversation=conversation, role="assistant", content="x", ttft_ms=1234,
        duration_ms=2234, completion_tokens=52, intent="chat", intent_source="fallback",
    )  # fmt: skip
    assert metrics_label(reply) == "first word after 1.2 s · 52 tokens/s · 52 tokens"
    assert "fallback" in metrics_label(reply, staff=True)
    client = Client()
    client.force_login(owner)
    page = client.get(f"/?c={conversation.pk}").content.decode()
    assert "first word after 1.2 s" in page and "fallback" not in page
