"""The intent request: a grammar-constrained label of a few tokens, the heuristic when
other replies wait, and the fallback (logged with its cause, counted) when it fails."""

import asyncio
import logging

import pytest
from pydantic_ai.models import override_allow_model_requests

from agents.builder import INTENT_GRAMMAR, INTENT_MAX_TOKENS
from agents.events import ChatTurn, Finished, IntentDecided
from agents.llm_service import LLMService
from agents.orchestrator import Orchestrator, intent_failures
from agents.profiles import PROFILES, SYSTEM_PROMPT
from agents.prompting import Prompt
from kobold_fake.server import Script
from tests.agents.orchestration import answering, collect, decide


@pytest.fixture
def auto_intents(kobold_settings):
    kobold_settings.INTENT_DETECTION = "auto"
    return kobold_settings


@pytest.fixture(autouse=True)
def _no_failures_counted():
    intent_failures.clear()
    yield
    intent_failures.clear()


async def test_a_label_decides_the_intent(auto_intents):
    """The intent agent's bare label decides the intent, source "llm"."""
    decided = await decide(Orchestrator(model=answering("code")), "Explain black holes")
    assert decided == IntentDecided("code", "llm")


async def test_the_native_intent_request_is_a_grammar_of_the_labels(
    auto_intents, fake_kobold
):
    """Native API: the intent request carries the labels' grammar, a few tokens,
    temperature 0 and its own genkey; the reply then uses the chosen profile."""
    fake_kobold.push(Script(tokens=["creative"]), Script(tokens=["Once", " upon"]))
    with override_allow_model_requests(True):
        events = await collect(Orchestrator().reply([], "the sea, please", genkey="G"))
    assert events[0] == IntentDecided("creative", "llm")
    intent, reply = fake_kobold.generations
    assert intent["grammar"] == INTENT_GRAMMAR
    assert (intent["max_length"], intent["temperature"]) == (INTENT_MAX_TOKENS, 0.0)
    assert (intent["genkey"], reply["genkey"]) == ("G-intent", "G")
    assert reply["max_length"] == PROFILES["creative"].max_tokens
    assert "grammar" not in reply
    posted = [r.path for r in fake_kobold.requests if r.path.endswith("generate")]
    assert posted == ["/api/v1/generate"]  # and the reply streams


async def test_the_openai_intent_request_sends_the_grammar_in_the_body(
    auto_intents, fake_kobold
):
    """KOBOLDCPP_API=openai: /v1/chat/completions gets the same grammar, token limit
    and genkey in its body (extra_body), which KoboldCpp and llama-cpp-python read."""
    auto_intents.KOBOLDCPP_API = "openai"
    fake_kobold.push(Script(tokens=["summarize"]))
    with override_allow_model_requests(True):
        decided = await decide(Orchestrator(), "what did we decide?")
    assert decided == IntentDecided("summarize", "llm")
    body = fake_kobold.generations[0]
    assert (body["grammar"], body["max_tokens"]) == (INTENT_GRAMMAR, INTENT_MAX_TOKENS)
    assert body["genkey"] == "K-intent"
    assert "/v1/chat/completions" in [r.path for r in fake_kobold.requests]


async def test_contended_takes_the_heuristic_without_a_generation(
    auto_intents, fake_kobold
):
    """contended=True (other replies wait): the heuristic decides an ambiguous message
    and the only generation is the reply itself."""
    calls: list = []
    orchestrator = Orchestrator(model=answering("chat", calls))
    with override_allow_model_requests(True):
        events = await collect(
            orchestrator.reply(
                [], "write a poem about rain", genkey="C", contended=True
            )
        )
    assert events[0] == IntentDecided("creative", "heuristic")
    assert calls == [] and [g["genkey"] for g in fake_kobold.generations] == ["C"]


async def test_contended_simple_reply_takes_the_heuristic(auto_intents):
    """simple_reply takes `contended` too."""
    calls: list = []
    orchestrator = Orchestrator(model=answering("Hi!", calls))
    events = await collect(
        orchestrator.simple_reply([], "Explain tides", genkey="C", contended=True)
    )
    assert events[0] == IntentDecided("chat", "heuristic")
    assert len(calls) == 1  # the reply only


async def test_a_reply_that_is_no_label_falls_back_logged_and_counted(
    auto_intents, caplog
):
    """A reply no grammar shaped (a server that ignores it): no retry, "fallback",
    a WARNING with the cause and the request's genkey, one count by cause."""
    calls: list = []
    orchestrator = Orchestrator(model=answering("I think it is about code.", calls))
    with caplog.at_level(logging.WARNING, logger="agents.orchestrator"):
        decided = await decide(orchestrator, "def f(): pass  # why?")
    assert decided == IntentDecided("code", "fallback")
    assert len(calls) == 1
    assert intent_failures == {"ValueError": 1}
    (record,) = [r for r in caplog.records if r.name == "agents.orchestrator"]
    assert record.levelno == logging.WARNING
    assert "K-intent" in record.message and "ValueError" in record.message
    assert "not an intent label" in record.message


async def test_fallback_on_timeout_aborts_the_intent_generation(
    auto_intents, fake_kobold
):
    """The intent request slower than INTENT_TIMEOUT: "fallback", its generation
    aborted by its genkey, counted as a TimeoutError, and the reply still streams."""
    auto_intents.INTENT_TIMEOUT = 0.3
    fake_kobold.push(Script(first_token_delay=5.0), Script())
    with override_allow_model_requests(True):
        events = await collect(Orchestrator().reply([], "Explain tides", genkey="R"))
    assert events[0] == IntentDecided("chat", "fallback")
    assert fake_kobold.aborts[0] == "R-intent" == fake_kobold.generations[0]["genkey"]
    assert intent_failures == {"TimeoutError": 1}
    assert isinstance(events[-1], Finished)


async def test_fallback_on_backend_down(auto_intents):
    """KoboldCpp not running: the intent request fails, the heuristic answers."""
    text = "write a poem about rain"
    down = LLMService(base_url="http://127.0.0.1:9", api="native", busy_retries=0)
    prompt = Prompt([ChatTurn("system", SYSTEM_PROMPT), ChatTurn("user", text)], 0, 0)
    with override_allow_model_requests(True):
        decided = await Orchestrator(down).detect_intent(text, prompt, genkey="D")
    assert decided == IntentDecided("creative", "fallback")
    assert intent_failures == {"BackendUnreachable": 1}


async def test_a_cancelled_reply_aborts_its_intent_generation(
    auto_intents, fake_kobold
):
    """Stopped while the intent request runs: that generation is aborted by its
    genkey (KoboldCpp would run a non-streamed one to its end)."""
    fake_kobold.push(Script(first_token_delay=30.0))
    with override_allow_model_requests(True):
        task = asyncio.create_task(
            collect(Orchestrator().reply([], "Explain tides", genkey="X"))
        )
        assert await fake_kobold.await_until(lambda: fake_kobold.generations)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await fake_kobold.await_until(lambda: "X-intent" in fake_kobold.aborts)
    assert intent_failures == {}
