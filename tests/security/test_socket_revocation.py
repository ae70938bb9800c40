"""Finding 2: open sockets outlived their credentials. Revoking an API key, logging out,
changing the password or deactivating the user now closes the sockets those credentials
opened (close code 4401); other sockets stay open."""

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from chat.models import ApiKey
from chat.socket.revocation import CLOSE_CODE
from tests.chat.conftest import open_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = "http://127.0.0.1:8001"


async def assert_closed_for_credentials(comm) -> None:
    output = await comm.receive_output(timeout=5)
    assert output["type"] == "websocket.close" and output["code"] == CLOSE_CODE


async def assert_still_open(comm) -> None:
    await comm.send_json_to({"type": "ping"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "pong"


async def browser(user) -> tuple[AsyncClient, str]:
    """A logged-in browser: its HTTP client and the Cookie header of its socket."""
    cookie = await session_cookie(user)
    name, value = cookie.split("=", 1)
    client = AsyncClient()
    client.cookies[name] = value
    return client, cookie


async def session_socket(cookie: str):
    comm = await open_socket(cookie=cookie, origin=ORIGIN)
    assert comm.connected
    return comm


async def test_revoking_a_key_closes_its_sockets_only(make_user, make_key):
    """DELETE /api/keys/<id>: the key's sockets close, a socket of another key stays."""
    user = await sync_to_async(make_user)()
    revoked_raw = await sync_to_async(make_key)(user)
    kept_raw = await sync_to_async(make_key)(user)
    revoked = await open_socket(revoked_raw)
    kept = await open_socket(kept_raw)
    client, _ = await browser(user)
    key = await sync_to_async(ApiKey.active_key_for)(revoked_raw)
    response = await client.delete(f"/api/keys/{key.pk}")
    assert response.status_code == 204
    await assert_closed_for_credentials(revoked)
    await assert_still_open(kept)
    await kept.disconnect()


async def test_revoking_keys_in_the_admin_closes_their_sockets(make_user, make_key):
    """The admin's "revoke" action goes the same way."""
    staff = await sync_to_async(make_user)(is_staff=True, is_superuser=True)
    owner = await sync_to_async(make_user)()
    raw = await sync_to_async(make_key)(owner)
    comm = await open_socket(raw)
    client, _ = await browser(staff)
    key = await sync_to_async(ApiKey.active_key_for)(raw)
    response = await client.post(
        "/admin/chat/apikey/",
        {"action": "revoke", "_selected_action": [key.pk]},
    )
    assert response.status_code == 302
    await assert_closed_for_credentials(comm)


async def test_logging_out_closes_that_sessions_sockets(make_user):
    """Logout ends the session: its sockets close; another session's socket stays."""
    user = await sync_to_async(make_user)()
    client, cookie = await browser(user)
    _, other_cookie = await browser(user)
    mine, other = await session_socket(cookie), await session_socket(other_cookie)
    response = await client.post("/accounts/logout/")
    assert response.status_code == 302
    await assert_closed_for_credentials(mine)
    await assert_still_open(other)
    await other.disconnect()


async def test_changing_the_password_closes_the_session_sockets(make_user, make_key):
    """A new password ends every session: their sockets close; API keys stay valid."""
    user = await sync_to_async(make_user)()
    client, cookie = await browser(user)
    session = await session_socket(cookie)
    keyed = await open_socket(await sync_to_async(make_key)(user))
    response = await client.post(
        "/accounts/password_change/",
        {
            "old_password": f"pw-{user.username}",
            "new_password1": "a-new-long-password-42",
            "new_password2": "a-new-long-password-42",
        },
    )
    assert response.status_code == 302, response.content[:500]
    await assert_closed_for_credentials(session)
    await assert_still_open(keyed)
    await keyed.disconnect()


async def test_deactivating_the_user_closes_every_socket(make_user, make_key):
    """is_active off (as the admin does it): session and key sockets all close."""
    user = await sync_to_async(make_user)()
    _, cookie = await browser(user)
    session = await session_socket(cookie)
    keyed = await open_socket(await sync_to_async(make_key)(user))
    user.is_active = False
    await sync_to_async(user.save)()
    await assert_closed_for_credentials(session)
    await assert_closed_for_credentials(keyed)


async def test_a_key_revoked_during_the_handshake_closes_the_socket(
    make_user, make_key, monkeypatch
):
    """Credentials are checked again once the socket has joined its groups: a
    revocation between the handshake's check and the join is not missed."""
    from chat.socket import auth

    user = await sync_to_async(make_user)()
    raw = await sync_to_async(make_key)(user)
    found = ApiKey.active_key_for

    def found_then_revoked(token):
        key = found(token)
        ApiKey.objects.filter(pk=key.pk).update(revoked_at="2020-01-01T00:00Z")
        return key

    monkeypatch.setattr(auth.ApiKey, "active_key_for", found_then_revoked)
    comm = await open_socket(raw)
    assert comm.connected
    await assert_closed_for_credentials(comm)
