"""Finding 8, the smaller ones: what the anonymous health check shows and how often it
probes; the backend password in a repr; NUL characters (a real one refused everywhere,
the six characters `\\u0000` accepted); password reset without mail; sockets per user."""

import asyncio
import json

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.test import AsyncClient, Client

from agents.backend_transport import Backend
from chat.socket.slots import CLOSE_CODE as TOO_MANY_SOCKETS
from tests.chat.conftest import frames_until, is_end, open_socket

HEALTH = "/api/simple-chat/health"


# --- the health check ----------------------------------------------------------------
async def get_in_own_context(path: str):
    """A request as Daphne runs it (its own ThreadSensitiveContext): without one, the
    test client runs concurrent requests one after the other."""
    async with ThreadSensitiveContext():
        return await AsyncClient().get(path)


@pytest.mark.django_db(transaction=True)
async def test_anonymous_health_is_the_status_only(kobold_settings):
    """No backend URL, model or queue for anyone on the network."""
    response = await AsyncClient().get(HEALTH)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
async def test_health_details_need_a_login_or_a_key(
    kobold_settings, fake_kobold, make_user, make_key
):
    user = await sync_to_async(make_user)(is_staff=True)  # the URL is for staff
    raw = await sync_to_async(make_key)(user)
    keyed = await AsyncClient().get(HEALTH, headers={"Authorization": f"Bearer {raw}"})
    assert keyed.json()["backend"]["url"] == fake_kobold.url
    browser = AsyncClient()
    await sync_to_async(browser.force_login)(user)
    assert (await browser.get(HEALTH)).json()["backend"]["model"]


@pytest.mark.django_db(transaction=True)
async def test_one_probe_serves_every_caller_for_a_while(
    kobold_settings, fake_kobold, monkeypatch
):
    """Forty callers within the window reuse one probe's answer (the window is widened:
    a loaded machine cannot outlast it)."""
    from chat.api import health

    client = AsyncClient()
    await client.get(HEALTH)  # learns the API kind and template once
    monkeypatch.setattr(health, "SHARED_SECONDS", 0.0)
    before = len(fake_kobold.requests)
    await client.get(HEALTH)
    one_probe = len(fake_kobold.requests) - before
    monkeypatch.setattr(health, "SHARED_SECONDS", 60.0)
    before = len(fake_kobold.requests)
    await asyncio.gather(*(client.get(HEALTH) for _ in range(20)))
    await asyncio.gather(*(client.get(HEALTH) for _ in range(20)))
    assert 0 < one_probe and len(fake_kobold.requests) - before == 0


@pytest.mark.django_db(transaction=True)
async def test_callers_share_the_probe_in_flight(settings, make_fake, monkeypatch):
    """A hanging KoboldCpp: twenty callers wait on one probe, not twenty."""
    from chat.pool import status

    hanging = make_fake(hang=True)
    settings.KOBOLDCPP_URL, settings.KOBOLDCPP_API = hanging.url, "native"
    monkeypatch.setattr(status, "BACKEND_SECONDS", 3.0)
    answers = await asyncio.gather(*(get_in_own_context(HEALTH) for _ in range(20)))
    assert {a.status_code for a in answers} == {503}
    assert hanging.connections_accepted == 1


def test_the_backend_password_is_not_in_its_repr():
    backend = Backend(base_url="http://kobold:5001", password="s3cret", busy_retries=1)
    assert "s3cret" not in repr(backend) and "kobold:5001" in repr(backend)


# --- NUL characters --------------------------------------------------------------------
@pytest.mark.django_db
def test_a_search_with_a_nul_is_a_search_without_it(make_user):
    """PostgreSQL refuses a NUL in a query (a 500 found by schemathesis): the search,
    in the API and on the page, leaves it out."""
    from chat.models import Conversation

    user = make_user()
    Conversation.objects.create(owner=user, title="gold map")
    browser = Client()
    browser.force_login(user)
    found = browser.get("/api/conversations", {"q": "go\x00ld"})
    assert found.status_code == 200
    assert [c["title"] for c in found.json()["items"]] == ["gold map"]
    assert browser.get("/", {"q": "\x00"}).status_code == 200


@pytest.mark.django_db
def test_an_api_key_name_with_a_nul_is_refused(make_user):
    browser = Client()
    browser.force_login(make_user())
    response = browser.post(
        "/api/keys", {"name": "a\x00b"}, content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["code"] == "bad_request"
    ok = browser.post("/api/keys", {"name": "ok"}, content_type="application/json")
    assert ok.status_code == 201


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "frame",
    [
        "how do I write \\u0000 in JSON?",
        json.dumps({"type": "message", "text": "how do I write \\u0000 in JSON?"}),
    ],
)
async def test_the_text_backslash_u0000_is_a_message(
    kobold_settings, make_user, make_key, frame
):
    """The six characters are text (a real NUL is still refused: test_consumer_security)."""
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(text_data=frame)
    frames = await frames_until(comm, is_end)
    stored = next(f for f in frames if f["type"] == "user_message")["message"]
    assert stored["content"] == "how do I write \\u0000 in JSON?"
    await comm.disconnect()


# --- password reset --------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
        "/accounts/reset/MQ/set-password/",
        "/accounts/reset/done/",
    ],
)
def test_password_reset_is_off_without_mail(settings, path):
    settings.EMAIL_HOST = ""
    assert Client().get(path).status_code == 404


@pytest.mark.django_db
def test_password_reset_is_served_once_mail_is_configured(settings):
    settings.EMAIL_HOST = "smtp.example.org"
    assert Client().get("/accounts/password_reset/").status_code == 200


# --- sockets per user ------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
async def test_sockets_past_the_cap_are_closed_with_4429(settings, make_user, make_key):
    """CHAT_MAX_SOCKETS_PER_USER: the next one is closed with a clear code; another
    user is not affected; closing one frees its slot."""
    settings.CHAT_MAX_SOCKETS_PER_USER = 2
    user, other = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    raw, other_raw = [await sync_to_async(make_key)(u) for u in (user, other)]
    first, second = await open_socket(raw), await open_socket(raw)
    third = await open_socket(raw)
    output = await third.receive_output(timeout=5)
    assert output["type"] == "websocket.close" and output["code"] == TOO_MANY_SOCKETS
    others = await open_socket(other_raw)
    await others.send_json_to({"type": "ping"})
    assert (await others.receive_json_from(timeout=5))["type"] == "pong"
    await first.disconnect()
    fourth = await open_socket(raw)
    await fourth.send_json_to({"type": "ping"})
    assert (await fourth.receive_json_from(timeout=5))["type"] == "pong"
    for comm in (second, others, fourth):
        await comm.disconnect()
