"""Fixtures for the chat app: users, API keys, and sockets driven by Channels'
WebsocketCommunicator through the real ASGI application (auth middleware included)."""

import asyncio
import itertools

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model

from chat.models import ApiKey, Message
from chat.replies.queue import reset_backend_queue

_names = itertools.count()


@pytest.fixture(autouse=True)
def _fresh_backend_queue():
    reset_backend_queue()
    yield
    reset_backend_queue()


@pytest.fixture
def make_user(db):
    def make(name: str | None = None, **extra):
        name = name or f"user{next(_names)}"
        return get_user_model().objects.create_user(
            name, password="pw-" + name, **extra
        )

    return make


@pytest.fixture
def make_key():
    def make(user) -> str:
        return ApiKey.generate(user=user, name="test")[1]

    return make


def application():
    from koboldchat.asgi import application as app

    return app


async def open_socket(
    raw_key: str | None = None,
    *,
    path: str = "/ws/chat/",
    origin: str | None = None,
    cookie: str | None = None,
    host: str = "127.0.0.1:8001",
):
    """A connected communicator (or the refused one, with connected False), sending
    the Host header every real client sends."""
    headers = [(b"host", host.encode())]
    if raw_key:
        headers.append((b"authorization", f"Bearer {raw_key}".encode()))
    if origin:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    comm = WebsocketCommunicator(application(), path, headers=headers)
    connected, _ = await comm.connect(timeout=5)
    comm.connected = connected
    return comm


async def session_cookie(user) -> str:
    from django.test import Client

    client = Client()
    await sync_to_async(client.force_login)(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def frames_until(comm, predicate, *, timeout: float = 10.0) -> list[dict]:
    """Receive frames until one satisfies `predicate`; return them all, that one last."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await comm.receive_json_from(timeout=timeout)
            frames.append(frame)
            if predicate(frame):
                return frames


def is_end(frame: dict) -> bool:
    return frame["type"] == "end"


def streamed_text(frames: list[dict], message_id: int, text: str = "") -> str:
    """Reassemble a reply from a snapshot, token and rewind frames, checking offsets as
    a client (`text`: what the client held before these frames)."""
    for frame in frames:
        if frame.get("message_id") != message_id:
            continue
        if frame["type"] == "snapshot":
            text = frame["content"]
            assert frame["offset"] == len(text)
        elif frame["type"] == "rewind":
            assert frame["offset"] <= len(text), (frame, text)
            text = text[: frame["offset"]]
        elif frame["type"] == "token":
            assert frame["offset"] == len(text), (frame, text)
            text += frame["text"]
    return text


@sync_to_async
def message_row(message_id: int) -> Message:
    return Message.objects.get(pk=message_id)


@sync_to_async
def replies_of(user) -> list[Message]:
    return list(
        Message.objects.filter(
            conversation__owner=user, role=Message.Role.ASSISTANT
        ).order_by("id")
    )
