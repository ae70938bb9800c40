"""Fixtures for the OpenAI-compatible endpoint: the official `openai` client talking to
the real ASGI application in this event loop (body streamed, hang-ups seen), users and
keys, the fake KoboldCpp behind."""

import httpx
import openai
import pytest

from chat.models import ApiKey
from tests.chat.conftest import (  # noqa: F401  (the chat app's fixtures)
    _fresh_backend_queue,
    make_key,
    make_user,
)
from tests.gateway.asgi_stream import StreamingASGITransport

BASE_URL = "http://127.0.0.1:8001/v1"


def asgi_client() -> httpx.AsyncClient:
    from koboldchat.asgi import application

    return httpx.AsyncClient(transport=StreamingASGITransport(application), timeout=30)


@pytest.fixture
async def make_client():
    """An AsyncOpenAI client for a raw API key, closed afterwards."""
    clients: list[openai.AsyncOpenAI] = []

    def make(raw_key: str) -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(
            base_url=BASE_URL, api_key=raw_key, http_client=asgi_client(), max_retries=0
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
def ada(make_user):  # noqa: F811  (the imported fixture)
    return make_user("ada")


@pytest.fixture
def ada_key(ada) -> str:
    return ApiKey.generate(user=ada, name="script")[1]


@pytest.fixture
def client(make_client, ada_key) -> openai.AsyncOpenAI:
    return make_client(ada_key)
