"""Fixtures shared by the whole suite: the fake KoboldCpp and settings pointing at it."""

import pytest
from channels.layers import channel_layers

from agents.http_client import reset_llm_http_client
from agents.llm_service import LLMService
from chat.pool.health import forget_health
from chat.pool.registry import forget_kept
from chat.replies.redis_queue import listeners_stopped
from kobold_fake.server import FakeKobold


@pytest.fixture
def make_fake():
    """Start a FakeKobold with the given options; every one is stopped afterwards."""
    servers: list[FakeKobold] = []

    def make(**options) -> FakeKobold:
        server = FakeKobold(**options)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def fake_kobold(make_fake):
    """A fresh fake KoboldCpp 1.76 on an ephemeral 127.0.0.1 port, stopped afterwards."""
    return make_fake()


@pytest.fixture
def kobold_settings(settings, fake_kobold):
    """Settings that point the app at the fake (native API, heuristic intents)."""
    settings.KOBOLDCPP_URL = fake_kobold.url
    settings.KOBOLDCPP_API = "native"
    settings.KOBOLDCPP_PASSWORD = ""
    settings.INTENT_DETECTION = "heuristic"
    settings.LLM_BUSY_RETRIES = 2
    return settings


@pytest.fixture(autouse=True)
async def _fresh_llm_client():
    """Each test's event loop gets its own shared client, closed at the end, its own
    channel layer (channels-redis binds a layer's receive to one loop), and no backend
    facts learnt by an earlier test (nor a backend found down)."""
    LLMService.forget_all()
    forget_health()
    forget_kept()
    channel_layers.backends.clear()
    yield
    await listeners_stopped()
    await reset_llm_http_client()
