"""KoboldNativeModel against the fake KoboldCpp: bodies, genkeys, stop sequences, streaming.

KoboldNativeModel honours ALLOW_MODEL_REQUESTS; tests that mean to reach the fake opt in.
"""

import pytest
from pydantic_ai import Agent, PromptedOutput
from pydantic_ai.models import override_allow_model_requests
from pydantic_ai.models.openai import OpenAIChatModel

from agents.builder import IntentDecision
from agents.errors import BackendUnreachable
from agents.http_client import get_llm_http_client
from agents.kobold_model import KoboldNativeModel, build_model, find_json_object
from agents.llm_service import LLMService
from kobold_fake.server import Script


@pytest.fixture
def agent(kobold_settings):
    model = KoboldNativeModel(template="chatml")
    return Agent(
        model,
        instructions="You are terse.",
        model_settings={"max_tokens": 42, "temperature": 0.3, "rep_pen": 1.2},
    )


async def test_request_posts_a_chatml_prompt_with_settings_and_stops(
    agent, fake_kobold
):
    """A non-streamed run posts /api/v1/generate with the template, sampler and stops."""
    with override_allow_model_requests(True):
        result = await agent.run("Hi there")
    assert result.output == "Hello there!"
    body = fake_kobold.generations[0]
    assert body["prompt"] == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
    )
    assert (body["max_length"], body["temperature"], body["rep_pen"]) == (42, 0.3, 1.2)
    assert body["stop_sequence"][:2] == ["<|im_end|>", "<|im_start|>"]
    assert body["trim_stop"] is True
    assert fake_kobold.requests[-1].path.endswith("/api/v1/generate")


async def test_each_request_gets_a_fresh_genkey(agent, fake_kobold):
    """Two runs send two different, non-empty genkeys."""
    with override_allow_model_requests(True):
        await agent.run("one")
        await agent.run("two")
    keys = [body["genkey"] for body in fake_kobold.generations]
    assert all(keys) and keys[0] != keys[1]


async def test_stop_sequences_from_settings_are_added(kobold_settings, fake_kobold):
    """stop_sequences of model_settings join the template's stops."""
    agent = Agent(KoboldNativeModel(), model_settings={"stop_sequences": ["\nUser:"]})
    with override_allow_model_requests(True):
        await agent.run("Hi")
    assert "\nUser:" in fake_kobold.generations[0]["stop_sequence"]
    assert "<|im_end|>" in fake_kobold.generations[0]["stop_sequence"]


async def test_request_stream_streams_tokens_from_the_sse_endpoint(agent, fake_kobold):
    """run_stream reads /api/extra/generate/stream token by token, genkey sent."""
    fake_kobold.push(Script(tokens=["Bon", "jour", " !"]))
    with override_allow_model_requests(True):
        async with agent.run_stream("Salut") as result:
            deltas = [d async for d in result.stream_text(delta=True, debounce_by=None)]
    assert "".join(deltas) == "Bonjour !"
    assert len(deltas) == 3
    assert fake_kobold.requests[-1].path.endswith("/api/extra/generate/stream")
    assert fake_kobold.generations[0]["genkey"]


async def test_prompted_output_instructions_reach_the_prompt(
    kobold_settings, fake_kobold
):
    """The JSON schema of a PromptedOutput is in the prompt; noisy JSON still parses."""
    fake_kobold.push(
        Script(tokens=['Sure! {"intent": "code", "confidence": 0.8, "language": "en"}'])
    )
    agent = Agent(KoboldNativeModel(), output_type=PromptedOutput(IntentDecision))
    with override_allow_model_requests(True):
        result = await agent.run("fix my loop")
    assert result.output == IntentDecision(intent="code", confidence=0.8, language="en")
    assert '"intent"' in fake_kobold.generations[0]["prompt"]


async def test_model_requests_are_refused_when_not_allowed(agent, fake_kobold):
    """With ALLOW_MODEL_REQUESTS False nothing reaches the backend."""
    with pytest.raises(RuntimeError, match="ALLOW_MODEL_REQUESTS"):
        await agent.run("Hi")
    assert fake_kobold.generations == []


async def test_the_shared_client_stays_open(agent, fake_kobold):
    """The model uses the shared client and never closes it."""
    client = get_llm_http_client()
    with override_allow_model_requests(True):
        await agent.run("Hi")
        async with agent:
            pass
    assert get_llm_http_client() is client and not client.is_closed


async def test_backend_down_raises_backend_unreachable(settings):
    """Nothing listening: a typed BackendUnreachable."""
    agent = Agent(KoboldNativeModel(base_url="http://127.0.0.1:9", busy_retries=0))
    with override_allow_model_requests(True), pytest.raises(BackendUnreachable):
        await agent.run("Hi")


async def test_build_model_picks_the_api(settings):
    """build_model gives the native model, or OpenAI's chat model on {URL}/v1."""
    service = LLMService(base_url="http://127.0.0.1:5999", api="native")
    native = build_model("native", service)
    openai = build_model("openai", service)
    assert isinstance(native, KoboldNativeModel)
    assert native.base_url == "http://127.0.0.1:5999"
    assert isinstance(openai, OpenAIChatModel)
    assert openai.base_url.rstrip("/") == "http://127.0.0.1:5999/v1"


async def test_openai_model_talks_to_v1_through_the_shared_client(
    kobold_settings, fake_kobold
):
    """The OpenAI-compatible path posts /v1/chat/completions to the same server."""
    service = LLMService(base_url=fake_kobold.url, api="openai")
    agent = Agent(build_model("openai", service), instructions="Be brief.")
    with override_allow_model_requests(True):
        result = await agent.run("Hi")
    assert result.output == "Hello there!"
    body = fake_kobold.generations[0]
    assert body["messages"][-1] == {"role": "user", "content": "Hi"}
    assert fake_kobold.requests[-1].path.endswith("/v1/chat/completions")
    assert not get_llm_http_client().is_closed


def test_find_json_object_finds_json_in_prose_and_fences():
    """The first complete JSON object is found amid text or inside fences."""
    assert find_json_object('ok ```json\n{"a": [1, 2]}\n``` done') == '{"a": [1, 2]}'
    assert find_json_object('The answer is {"a": "}"} really') == '{"a": "}"}'
    assert find_json_object("no json {here") is None
