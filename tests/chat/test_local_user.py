"""KOBOLDCHAT_LOCAL_USER: a script on this machine acts as that user on the REST API and
the socket without credentials; nothing else does."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from kobold_fake.server import Script
from tests.chat.conftest import application, frames_until, is_end

LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}


@pytest.fixture
def local_user(settings, make_user):
    settings.KOBOLDCHAT_LOCAL_USER = "scripter"
    return make_user("scripter")


@pytest.mark.django_db
def test_a_script_on_this_machine_is_the_local_user(client, local_user):
    """No credentials from 127.0.0.1: the REST API answers as the local user."""
    answer = client.post(
        "/api/conversations", {"title": "From curl"}, "application/json", **LOOPBACK
    )
    assert answer.status_code == 201
    assert local_user.conversations.get().title == "From curl"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "meta",
    [
        {"REMOTE_ADDR": "192.168.1.20"},  # another machine
        LOOPBACK | {"HTTP_ORIGIN": "https://evil.example"},  # a web page's fetch
        LOOPBACK | {"HTTP_SEC_FETCH_SITE": "cross-site"},  # a browser, whatever it is
        LOOPBACK | {"HTTP_X_FORWARDED_FOR": "203.0.113.9"},  # relayed by a proxy
        LOOPBACK | {"HTTP_AUTHORIZATION": "Bearer kc_wrong"},  # a bad key stays bad
    ],
)
def test_anything_else_still_needs_credentials(client, local_user, meta):
    assert client.get("/api/conversations", **meta).status_code == 401


@pytest.mark.django_db
def test_off_by_default(client, make_user):
    make_user("scripter")
    assert client.get("/api/conversations", **LOOPBACK).status_code == 401


@pytest.mark.django_db(transaction=True)
async def test_the_socket_of_a_local_script(kobold_settings, fake_kobold, local_user):
    """A socket from 127.0.0.1 with no key and no Origin chats as the local user."""
    fake_kobold.default_script = Script(tokens=["Coucou", " !"])
    comm = WebsocketCommunicator(
        application(), "/ws/chat/", headers=[(b"host", b"127.0.0.1:8001")]
    )
    comm.scope["client"] = ("127.0.0.1", 50000)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    await comm.send_to(text_data="coucou")
    assert (await frames_until(comm, is_end))[-1]["content"] == "Coucou !"
    await comm.disconnect()
    count = await sync_to_async(local_user.conversations.count)()
    assert count == 1


@pytest.mark.django_db(transaction=True)
async def test_a_socket_from_elsewhere_is_refused(kobold_settings, local_user):
    comm = WebsocketCommunicator(
        application(), "/ws/chat/", headers=[(b"host", b"127.0.0.1:8001")]
    )
    comm.scope["client"] = ("10.1.2.3", 50000)
    connected, _ = await comm.connect(timeout=5)
    assert not connected
