"""Finding 4: the socket's Origin check compared the host name only, so another port or
scheme of the same host, or any origin with ALLOWED_HOSTS=*, could use a visitor's
session. The whole origin must now be the site's own (Host and scheme of the request) or
one of DJANGO_CSRF_TRUSTED_ORIGINS."""

import pytest
from asgiref.sync import sync_to_async

from chat.socket.origin import origin_allowed
from tests.chat.conftest import open_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def scope(host: str, scheme: str = "ws", **headers: str) -> dict:
    pairs = [(b"host", host.encode())]
    pairs += [
        (name.replace("_", "-").encode(), v.encode()) for name, v in headers.items()
    ]
    return {"type": "websocket", "scheme": scheme, "headers": pairs}


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:8002",  # another port of the same host
        "https://127.0.0.1:8001",  # another scheme
        "http://127.0.0.1",  # the default port is another port
        "http://evil.example",
        "null",
        "http://127.0.0.1:notaport",
    ],
)
async def test_a_session_socket_from_another_origin_is_refused(make_user, origin):
    user = await sync_to_async(make_user)()
    cookie = await session_cookie(user)
    comm = await open_socket(cookie=cookie, origin=origin, host="127.0.0.1:8001")
    assert not comm.connected


async def test_the_sites_own_origin_is_accepted(make_user):
    user = await sync_to_async(make_user)()
    cookie = await session_cookie(user)
    comm = await open_socket(
        cookie=cookie, origin="http://127.0.0.1:8001", host="127.0.0.1:8001"
    )
    assert comm.connected
    await comm.disconnect()


def test_allowed_hosts_star_does_not_accept_every_origin(settings):
    """ALLOWED_HOSTS=*: still only the origin of the Host the browser asked."""
    settings.ALLOWED_HOSTS = ["*"]
    assert origin_allowed(b"http://chat.lan:8001", scope("chat.lan:8001"))
    assert not origin_allowed(b"http://evil.example", scope("chat.lan:8001"))
    assert not origin_allowed(b"http://chat.lan:9999", scope("chat.lan:8001"))


def test_a_host_outside_allowed_hosts_has_no_origin(settings):
    settings.ALLOWED_HOSTS = ["chat.example.org"]
    assert not origin_allowed(b"http://evil.example", scope("evil.example"))


def test_https_behind_a_proxy_is_the_proxys_scheme(settings):
    """Daphne sees ws:// behind nginx; X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER) says
    what the browser used, as for Django's own CSRF check."""
    settings.ALLOWED_HOSTS = ["chat.example.org"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    behind = scope("chat.example.org", x_forwarded_proto="https")
    assert origin_allowed(b"https://chat.example.org", behind)
    assert not origin_allowed(b"http://chat.example.org", behind)
    assert origin_allowed(b"https://chat.example.org", scope("chat.example.org", "wss"))


def test_csrf_trusted_origins_are_accepted_exactly(settings):
    """A trusted origin (a wildcard too, as Django reads it) is accepted; its port and
    scheme must still match."""
    settings.ALLOWED_HOSTS = ["backend.internal"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.org", "https://*.corp.test"]
    inside = scope("backend.internal")
    assert origin_allowed(b"https://chat.example.org", inside)
    assert origin_allowed(b"https://team.corp.test", inside)
    assert not origin_allowed(b"http://chat.example.org", inside)
    assert not origin_allowed(b"https://chat.example.org:8443", inside)
    assert not origin_allowed(b"https://corp.test.evil.example", inside)


async def test_api_key_sockets_without_origin_still_work(make_user, make_key):
    """Scripts send no Origin: a valid key is enough."""
    user = await sync_to_async(make_user)()
    raw = await sync_to_async(make_key)(user)
    comm = await open_socket(raw)
    assert comm.connected
    await comm.disconnect()
