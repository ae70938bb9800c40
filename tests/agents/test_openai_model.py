"""pydantic-ai's OpenAI model on /v1: its errors become agents.errors types."""

import socket

import pytest
from pydantic_ai import Agent
from pydantic_ai.exceptions import ModelConnectionError, ModelHTTPError
from pydantic_ai.models import override_allow_model_requests
from pydantic_ai.models.openai import OpenAIChatModel

from agents.errors import (
    BackendAuthError,
    BackendBusy,
    BackendProtocolError,
    BackendUnreachable,
)
from agents.kobold_model import build_model
from agents.llm_service import LLMService
from agents.openai_model import TranslatedErrorsModel, backend_error, openai_model
from kobold_fake.server import Script


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def agent_on(url: str, password: str = "") -> Agent:
    service = LLMService(base_url=url, api="openai", password=password)
    return Agent(build_model("openai", service))


async def test_build_model_wraps_openais_chat_model():
    """The /v1 model is pydantic-ai's own, on {URL}/v1, inside the translator."""
    model = openai_model("http://127.0.0.1:5999/")
    assert isinstance(model, TranslatedErrorsModel)
    assert isinstance(model.wrapped, OpenAIChatModel)
    assert model.base_url.rstrip("/") == "http://127.0.0.1:5999/v1"


async def test_a_closed_port_is_backend_unreachable():
    """Nothing listening: BackendUnreachable (backend_unreachable), not backend_error."""
    agent = agent_on(f"http://127.0.0.1:{closed_port()}")
    with override_allow_model_requests(True), pytest.raises(BackendUnreachable) as e:
        await agent.run("Hi")
    assert e.value.code == "backend_unreachable"


async def test_a_closed_port_is_unreachable_when_streaming_too():
    """The streamed request translates the same way."""
    agent = agent_on(f"http://127.0.0.1:{closed_port()}")
    with override_allow_model_requests(True), pytest.raises(BackendUnreachable):
        async with agent.run_stream("Hi") as result:
            await result.get_output()


async def test_a_wrong_password_is_backend_auth(make_fake):
    """HTTP 401 from /v1 is BackendAuthError."""
    fake = make_fake(password="s3cret")
    with override_allow_model_requests(True), pytest.raises(BackendAuthError):
        await agent_on(fake.url, password="wrong").run("Hi")


async def test_a_busy_server_is_backend_busy(fake_kobold):
    """HTTP 503 every time (the SDK's own retries included) is BackendBusy."""
    fake_kobold.push(*[Script(fault="http_503")] * 5)
    with override_allow_model_requests(True), pytest.raises(BackendBusy):
        await agent_on(fake_kobold.url).run("Hi")


@pytest.mark.parametrize(
    ("error", "expected", "status"),
    [
        (ModelHTTPError(503, "koboldcpp"), BackendBusy, 503),
        (ModelHTTPError(401, "koboldcpp"), BackendAuthError, 401),
        (ModelHTTPError(500, "koboldcpp"), BackendProtocolError, 500),
        (ModelConnectionError("koboldcpp", "refused", phase="connect"), None, None),
        (ModelConnectionError("koboldcpp", "cut", phase="read"), None, None),
    ],
)
def test_each_pydantic_ai_error_has_its_type(error, expected, status):
    """503 busy, 401 auth, other statuses protocol; a connection that never opened is
    unreachable, one cut while reading is a protocol error."""
    translated = backend_error(error)
    if expected is None:
        expected = (
            BackendUnreachable if error.phase == "connect" else BackendProtocolError
        )
    assert type(translated) is expected
    assert translated.status == status
