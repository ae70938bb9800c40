"""GET /api/simple-chat/health in each backend state: up, down, hanging, busy; always
within two seconds, and without credentials in the URL. The details are for a logged-in
caller (an API key here); anonymous callers get the status only (tests/security)."""

import asyncio
import socket
import time

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from chat.pool.status import public_url
from kobold_fake.server import FakeKobold, Script

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def caller(make_user, make_key) -> dict[str, str]:
    """The headers of a staff member with an API key: who gets every detail."""
    return {"Authorization": f"Bearer {make_key(make_user(is_staff=True))}"}


async def test_a_user_who_is_not_staff_is_not_told_where_the_backend_is(
    kobold_settings, fake_kobold, make_user, make_key
):
    key = await sync_to_async(make_key)(await sync_to_async(make_user)())
    status, body, _ = await get_health({"Authorization": f"Bearer {key}"})
    assert status == 200 and body["backend"]["model"]  # the state and the model
    assert "url" not in body["backend"] or body["backend"]["url"] == ""
    assert "127.0.0.1" not in str(body)


async def get_health(headers: dict[str, str]) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = await AsyncClient().get("/api/simple-chat/health", headers=headers)
    return response.status_code, response.json(), time.monotonic() - started


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_up_is_200_with_backend_details(kobold_settings, fake_kobold, caller):
    """A running KoboldCpp gives 200 ok with its model, version and context."""
    status, body, _ = await get_health(caller)
    assert status == 200 and body["status"] == "ok"
    backend = body["backend"]
    assert backend["reachable"] is True and backend["url"] == fake_kobold.url
    assert backend["model"] == "koboldcpp/SmolLM2-135M-Instruct.Q4_1"
    assert backend["version"] == "1.76" and backend["max_context"] == 2048
    assert (
        backend["idle"] is True
        and backend["label"] == f"KoboldCpp at {fake_kobold.url}"
    )
    assert body["database"] is True and body["channel_layer"] is True


async def test_down_is_503_degraded(settings, caller):
    """Nothing listening: 503 degraded, the other checks still reported."""
    settings.KOBOLDCPP_URL = closed_port_url()
    settings.KOBOLDCPP_API = "native"
    status, body, _ = await get_health(caller)
    assert status == 503 and body["status"] == "degraded"
    assert body["backend"]["reachable"] is False
    assert body["backend"]["error"] == "backend_unreachable"
    assert body["database"] is True and body["channel_layer"] is True


async def test_hanging_backend_still_answers_within_two_seconds(settings, caller):
    """A KoboldCpp that accepts and never answers costs at most the time limit."""
    server = FakeKobold(hang=True)
    server.start()
    try:
        settings.KOBOLDCPP_URL = server.url
        settings.KOBOLDCPP_API = "native"
        status, body, elapsed = await get_health(caller)
    finally:
        server.stop()
    assert status == 503 and body["backend"]["reachable"] is False
    assert elapsed < 2.0


async def test_busy_backend_is_reachable_and_not_idle(
    kobold_settings, fake_kobold, caller
):
    """While KoboldCpp generates, health stays 200 and says it is not idle."""
    fake_kobold.push(Script(tokens=["slow"], first_token_delay=5))
    async with httpx.AsyncClient(base_url=fake_kobold.url) as client:
        generation = asyncio.create_task(
            client.post("/api/v1/generate", json={"prompt": "hi", "max_length": 5})
        )
        assert await fake_kobold.await_until(lambda: fake_kobold.generations)
        status, body, _ = await get_health(caller)
        generation.cancel()
    assert status == 200 and body["backend"]["idle"] is False


async def test_url_never_shows_credentials(kobold_settings, fake_kobold, caller):
    """user:password in KOBOLDCPP_URL is left out of the URL and the label."""
    kobold_settings.KOBOLDCPP_URL = fake_kobold.url.replace("//", "//me:s3cret@")
    _, body, _ = await get_health(caller)
    assert "s3cret" not in str(body)
    assert body["backend"]["url"] == fake_kobold.url


async def test_label_setting_names_the_backend(kobold_settings, caller):
    """KOBOLDCHAT_BACKEND_LABEL (set by the run command) is reported as is."""
    kobold_settings.KOBOLDCHAT_BACKEND_LABEL = "embedded SmolLM2 (llama.cpp)"
    _, body, _ = await get_health(caller)
    assert body["backend"]["label"] == "embedded SmolLM2 (llama.cpp)"


def test_public_url_drops_userinfo_and_keeps_ipv6_and_port():
    """The helper keeps scheme, host, port and path only."""
    assert (
        public_url("https://u:p@[::1]:5001/kobold?x=1") == "https://[::1]:5001/kobold"
    )
