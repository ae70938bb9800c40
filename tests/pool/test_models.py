"""Backends serving different models: a conversation whose model is chosen goes only to
backends serving it (the page offers the choice, REST and /v1 take it), and /v1/models
lists every model."""

import openai
import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from chat.models import Backend, Conversation
from tests.chat.conftest import open_socket
from tests.gateway.conftest import BASE_URL, asgi_client
from tests.pool.test_scheduling import _reply

pytestmark = pytest.mark.django_db(transaction=True)

SMALL, BIG = "koboldcpp/SmolLM2-135M-Instruct.Q4_1", "koboldcpp/Big-70B"


@pytest.fixture
def two_models(make_pool):
    """a serves SMALL, b serves BIG; the rows know it (as after a health check)."""
    a, b = make_pool(2)
    b.model = BIG
    Backend.objects.filter(name="a").update(model=SMALL)
    Backend.objects.filter(name="b").update(model=BIG)
    return a, b


def _rest(user, make_key) -> Client:
    return Client(headers={"Authorization": f"Bearer {make_key(user)}"})


async def test_a_conversation_set_to_a_model_goes_to_its_backend_only(
    two_models, make_user, make_key
):
    """a is free and first on a tie, yet a conversation set to BIG is written by b."""
    a, b = two_models
    user = await sync_to_async(make_user)()
    conversation = await Conversation.objects.acreate(owner=user)
    api = await sync_to_async(_rest)(user, make_key)
    changed = await sync_to_async(api.patch)(
        f"/api/conversations/{conversation.pk}",
        {"model": BIG},
        content_type="application/json",
    )
    assert changed.status_code == 200 and changed.json()["model"] == BIG
    comm = await open_socket(await sync_to_async(make_key)(user))
    for text in ("first", "second"):
        frames, reply = await _reply(comm, text, conversation_id=conversation.pk)
        assert frames[-1]["status"] == "complete" and reply.backend.name == "b"
        assert reply.model == BIG  # the model that wrote it, as b names it
    assert len(b.generations) == 2 and a.generations == []
    await comm.disconnect()


async def test_a_model_no_backend_serves_is_refused(two_models, make_user, make_key):
    user = await sync_to_async(make_user)()
    conversation = await Conversation.objects.acreate(owner=user)
    api = await sync_to_async(_rest)(user, make_key)
    refused = await sync_to_async(api.patch)(
        f"/api/conversations/{conversation.pk}",
        {"model": "koboldcpp/Nowhere-1B"},
        content_type="application/json",
    )
    assert refused.status_code == 400 and refused.json()["code"] == "bad_request"
    await conversation.arefresh_from_db()
    assert conversation.model == ""


def test_the_page_offers_the_models_served(two_models, make_user, client):
    user = make_user()
    conversation = Conversation.objects.create(owner=user, model=BIG)
    client.force_login(user)
    page = client.get(f"/?c={conversation.pk}").content.decode()
    assert 'name="model"' in page
    assert f'<option value="{BIG}" selected>' in page
    assert f'<option value="{SMALL}">' in page


def test_one_model_served_offers_no_choice(make_pool, make_user, client):
    make_pool(2)
    Backend.objects.update(model=SMALL)
    user = make_user()
    Conversation.objects.create(owner=user)
    client.force_login(user)
    assert 'name="model"' not in client.get("/").content.decode()


async def test_v1_lists_every_model_and_routes_by_it(two_models, make_user, make_key):
    a, b = two_models
    key = await sync_to_async(make_key)(await sync_to_async(make_user)())
    client = openai.AsyncOpenAI(
        base_url=BASE_URL, api_key=key, http_client=asgi_client(), max_retries=0
    )
    listed = await client.models.list()
    assert sorted(model.id for model in listed.data) == sorted([SMALL, BIG])
    ask = [{"role": "user", "content": "hi"}]
    await client.chat.completions.create(model=BIG, messages=ask)
    assert len(b.generations) == 1 and a.generations == []
    await client.chat.completions.create(model=SMALL, messages=ask)
    assert len(a.generations) == 1 and len(b.generations) == 1
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="koboldcpp/Nowhere", messages=ask)
    await client.close()
