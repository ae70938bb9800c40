"""The shared keep-alive httpx client: one per event loop, with the card's limits."""

import asyncio
import threading
import warnings

import httpx

from agents.http_client import (
    close_llm_http_client,
    get_llm_http_client,
    reset_llm_http_client,
)


async def test_same_client_twice():
    """Two gets on one loop give the same client."""
    assert get_llm_http_client() is get_llm_http_client()


async def test_reset_closes_the_old_client_and_the_new_one_works(fake_kobold):
    """After a reset the old client is closed and a fresh one answers requests."""
    old = get_llm_http_client()
    await reset_llm_http_client()
    new = get_llm_http_client()
    assert old.is_closed and new is not old
    response = await new.get(f"{fake_kobold.url}/api/extra/version")
    assert response.status_code == 200


async def test_close_then_get_gives_a_new_client():
    """A closed client is never handed out again."""
    old = get_llm_http_client()
    await close_llm_http_client()
    assert old.is_closed
    assert get_llm_http_client() is not old


async def test_each_event_loop_gets_its_own_client():
    """A client made on another loop is not shared with this one."""
    mine = get_llm_http_client()
    theirs: list[httpx.AsyncClient] = []

    async def grab() -> None:
        theirs.append(get_llm_http_client())
        await close_llm_http_client()

    thread = threading.Thread(target=lambda: asyncio.run(grab()))
    thread.start()
    thread.join()
    assert theirs and theirs[0] is not mine
    assert not mine.is_closed


async def test_timeouts_and_limits():
    """Timeouts 10/none/30/10 s; 10 connections, 5 kept alive for 300 s."""
    client = get_llm_http_client()
    assert client.timeout == httpx.Timeout(connect=10, read=None, write=30, pool=10)
    pool = client._transport._pool  # httpx exposes the limits only on its pool
    assert pool._max_connections == 10
    assert pool._max_keepalive_connections == 5
    assert pool._keepalive_expiry == 300


async def test_keep_alive_and_bearer_headers(settings, fake_kobold):
    """Requests say Connection: keep-alive and carry the password as a Bearer token."""
    settings.KOBOLDCPP_PASSWORD = "s3cret"
    await reset_llm_http_client()
    await get_llm_http_client().get(f"{fake_kobold.url}/api/extra/version")
    headers = fake_kobold.requests[-1].headers
    assert headers["connection"] == "keep-alive"
    assert headers["authorization"] == "Bearer s3cret"


async def test_no_authorization_without_password(settings, fake_kobold):
    """Without KOBOLDCPP_PASSWORD no Authorization header is sent."""
    settings.KOBOLDCPP_PASSWORD = ""
    await reset_llm_http_client()
    await get_llm_http_client().get(f"{fake_kobold.url}/api/extra/version")
    assert "authorization" not in fake_kobold.requests[-1].headers


async def test_keep_alive_server_reuses_one_connection(make_fake):
    """Two requests in a row to an HTTP/1.1 keep-alive server share one connection."""
    fake = make_fake(keep_alive=True)
    client = get_llm_http_client()
    for _ in range(2):
        response = await client.get(f"{fake.url}/api/extra/version")
        assert response.status_code == 200
    assert fake.connections_accepted == 1


async def test_fifty_requests_to_a_close_per_request_server(fake_kobold):
    """KoboldCpp 1.76 closes after every response; 50 requests in a row all succeed."""
    client = get_llm_http_client()
    for _ in range(50):
        response = await client.get(f"{fake_kobold.url}/api/extra/perf")
        assert response.status_code == 200
        assert "idle" in response.json()
    assert fake_kobold.connections_accepted == 50


async def test_pydantic_ai_httpx2_warning_is_silenced():
    """Handing the client to pydantic-ai's OpenAI provider emits no httpx2 warning."""
    from pydantic_ai.providers.openai import OpenAIProvider

    with warnings.catch_warnings(record=True) as caught:
        OpenAIProvider(
            base_url="http://127.0.0.1:9/v1",
            api_key="x",
            http_client=get_llm_http_client(),
        )
        warnings.warn("an unrelated warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["an unrelated warning"]


async def test_pool_grows_with_a_multi_slot_backend(settings):
    """BACKEND_CONCURRENCY=100 (a multi-slot server) gets a stream and a side request
    per slot; the default stays at 10 connections."""
    settings.BACKEND_CONCURRENCY = 100
    await reset_llm_http_client()
    pool = get_llm_http_client()._transport._pool
    assert pool._max_connections == 200
    assert pool._max_keepalive_connections == 5
