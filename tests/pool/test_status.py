"""The health check over a pool: staff see each backend (answers, model, slots busy,
last speed) and the line; users see one summary; one backend down is not an outage."""

import pytest
from asgiref.sync import sync_to_async

from kobold_fake.server import Script
from tests.chat.conftest import frames_until, is_end, open_socket
from tests.chat.test_api_health import get_health

pytestmark = pytest.mark.django_db(transaction=True)


async def _headers(make_user, make_key, **fields) -> dict[str, str]:
    key = await sync_to_async(make_key)(await sync_to_async(make_user)(**fields))
    return {"Authorization": f"Bearer {key}"}


async def test_staff_see_each_backend_with_its_busy_slots(
    make_pool, make_user, make_key
):
    """While a writes a reply, a shows 1 of 1 slot busy and b none; the speed is the
    one KoboldCpp's perf reports (14.4 ms a token on the fake)."""
    a, b = await sync_to_async(make_pool)(2, model="koboldcpp/Other-7B")
    a.push(Script(tokens=["slow "] * 40, delay=0.05))
    comm = await open_socket(
        await sync_to_async(make_key)(await sync_to_async(make_user)())
    )
    await comm.send_json_to({"type": "message", "text": "write slowly"})
    assert await a.await_until(lambda: a.active_generations == 1)
    status, body, _ = await get_health(
        await _headers(make_user, make_key, is_staff=True)
    )
    assert status == 200 and body["status"] == "ok"
    by_name = {backend["name"]: backend for backend in body["backends"]}
    assert set(by_name) == {"a", "b"}
    assert (by_name["a"]["busy"], by_name["a"]["slots"]) == (1, 1)
    assert (by_name["b"]["busy"], by_name["b"]["slots"]) == (0, 1)
    assert by_name["a"]["url"] == a.url and by_name["b"]["reachable"] is True
    assert by_name["b"]["tokens_per_s"] == pytest.approx(1000 / 14.4, abs=0.1)
    assert body["backend"]["model"] == "koboldcpp/Other-7B"
    assert body["backend"]["label"] == "2 of 2 KoboldCpp servers"
    assert body["waiting"] == 0
    await frames_until(comm, is_end, timeout=20)
    await comm.disconnect()


async def test_one_backend_down_is_ok_and_shown_down(make_pool, make_user, make_key):
    a, b = await sync_to_async(make_pool)(2)
    b.stop()
    status, body, _ = await get_health(
        await _headers(make_user, make_key, is_staff=True)
    )
    assert status == 200 and body["backend"]["reachable"] is True
    by_name = {backend["name"]: backend for backend in body["backends"]}
    assert by_name["a"]["reachable"] is True
    assert by_name["b"]["reachable"] is False
    assert by_name["b"]["error"] == "backend_unreachable"
    assert body["backend"]["label"] == "1 of 2 KoboldCpp servers"


async def test_every_backend_down_is_degraded(make_pool, make_user, make_key):
    for fake in await sync_to_async(make_pool)(2):
        fake.stop()
    status, body, _ = await get_health(
        await _headers(make_user, make_key, is_staff=True)
    )
    assert status == 503 and body["backend"]["reachable"] is False
    assert body["backend"]["error"] == "backend_unreachable"


async def test_users_see_the_summary_only(make_pool, make_user, make_key):
    """Not which servers, not where: the state and the models."""
    a, b = await sync_to_async(make_pool)(2)
    status, body, _ = await get_health(await _headers(make_user, make_key))
    assert status == 200 and body["backend"]["reachable"] is True
    assert body.get("backends", []) == [] and body.get("waiting", 0) == 0
    assert a.url.split("//")[1] not in str(body) and "127.0.0.1" not in str(body)
