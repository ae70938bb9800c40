"""KoboldNativeModel against the fake KoboldCpp: bodies, genkeys, stop sequences, streaming.

KoboldNativeModel honours ALLOW_MODEL_REQUESTS; tests that mean to reach the fake opt in.
"""

import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import ModelRequest, SystemPromptPart, UserPromptPart
from pydantic_ai.models import override_allow_model_requests
from pydantic_ai.models.openai import OpenAIChatModel

from agents.errors import BackendUnreachable, GenerationFailed
from agents.http_client import get_llm_http_client
from agents.kobold_model import KoboldNativeModel, build_model
from agents.llm_service import LLMService
from kobold_fake.server import Script
from kobold_fake.wire import prompt_text, token_ids


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


async def test_a_later_system_prompt_stays_where_it_is(kobold_settings, fake_kobold):
    """A system prompt after the user's message (a request's instruction turn) is a
    system turn there, not merged into the first nor turned into user text."""
    history = [
        ModelRequest(parts=[SystemPromptPart("Head."), UserPromptPart("Hi")]),
        ModelRequest(parts=[SystemPromptPart("Answer in one word.")]),
    ]
    with override_allow_model_requests(True):
        await Agent(KoboldNativeModel()).run(message_history=history)
    assert fake_kobold.generations[0]["prompt"] == (
        "<|im_start|>system\nHead.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>system\nAnswer in one word.<|im_end|>\n<|im_start|>assistant\n"
    )


async def test_grammar_and_unknown_settings_reach_the_body(
    kobold_settings, fake_kobold
):
    """Settings that are not pydantic-ai's (grammar, genkey) go into the body as they
    are; max_tokens becomes max_length; extra_body (for /v1) stays out."""
    settings = {"max_tokens": 4, "grammar": 'root ::= "a" | "b"', "genkey": "G1"}
    agent = Agent(KoboldNativeModel(), model_settings=settings | {"extra_body": {}})
    with override_allow_model_requests(True):
        assert (await agent.run("pick")).output == "a"
    body = fake_kobold.generations[0]
    assert (body["grammar"], body["max_length"], body["genkey"]) == (
        'root ::= "a" | "b"', 4, "G1",
    )  # fmt: skip
    assert "extra_body" not in body and "max_tokens" not in body


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
    """build_model gives the native model on the service, or OpenAI's chat model on
    {URL}/v1 (inside the error translator)."""
    service = LLMService(base_url="http://127.0.0.1:5999", api="native")
    native = build_model("native", service)
    openai = build_model("openai", service)
    assert isinstance(native, KoboldNativeModel) and native.service is service
    assert native.base_url == "http://127.0.0.1:5999"
    assert isinstance(openai.wrapped, OpenAIChatModel)
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


async def test_the_native_model_uses_the_services_template_choice(make_fake):
    """Without a template of its own the model asks its service, which chooses once
    (here Llama 3 from the model name) for every model built on it."""
    fake = make_fake(model="koboldcpp/Meta-Llama-3-8B-Instruct.Q4_K_M")
    service = LLMService(base_url=fake.url, api="native", template="auto")
    with override_allow_model_requests(True):
        await Agent(build_model("native", service)).run("Hi")
        await Agent(build_model("native", service)).run("Hi again")
    assert all(
        body["prompt"].endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
        for body in fake.generations
    )
    assert [r.path for r in fake.requests].count("/api/v1/model") == 1


async def test_a_plain_reply_reports_koboldcpps_token_counts(make_fake):
    """KoboldCpp's own prompt_tokens/completion_tokens become the response's usage."""
    fake = make_fake(version="1.102")
    service = LLMService(base_url=fake.url, api="native", template="chatml")
    with override_allow_model_requests(True):
        result = await Agent(build_model("native", service)).run("Hi")
    prompt = len(token_ids(prompt_text(fake.generations[-1])))
    assert (result.usage.input_tokens, result.usage.output_tokens) == (prompt, 3)


async def test_a_failed_generation_raises_with_its_text(make_fake):
    """finish_reason "error" (1.117) raises GenerationFailed keeping the text."""
    fake = make_fake(version="1.117")
    fake.push(Script(tokens=["par", "tial", "x"], fault="fail", fault_at=2))
    service = LLMService(base_url=fake.url, api="native", template="chatml")
    with override_allow_model_requests(True), pytest.raises(GenerationFailed) as e:
        await Agent(build_model("native", service)).run("Hi")
    assert e.value.text == "partial"
