"""The orchestrator's replies: the heuristic fast path, profiles and overrides, the
prompt, and both reply streams under the watchdog (the intent request:
test_orchestrator_intents.py; the shared prompt start: test_prompt_cache.py).

pydantic-ai test models where no backend is meant to answer an agent; the fake
KoboldCpp (real HTTP) for the streams and for KoboldNativeModel end to end.
"""

import pytest
from pydantic_ai.models import override_allow_model_requests

from agents.errors import PromptTooLong, StreamStalled, StreamTimeout
from agents.events import ChatTurn, Finished, IntentDecided, TextDelta
from agents.orchestrator import Orchestrator, ReplyOverrides
from agents.profiles import PROFILES, SYSTEM_PROMPT, profile_for, system_prompt
from kobold_fake.server import Script
from tests.agents.orchestration import answering, collect, decide


@pytest.fixture
def auto_intents(kobold_settings):
    kobold_settings.INTENT_DETECTION = "auto"
    return kobold_settings


# --- heuristic fast path ------------------------------------------------------------


@pytest.mark.parametrize("text", ["coucou", "Bonjour", "thanks!"])
async def test_smalltalk_is_one_short_generation(auto_intents, fake_kobold, text):
    """Greetings and thanks: heuristic intent, then ONE short (smalltalk) generation."""
    calls: list = []
    orchestrator = Orchestrator(model=answering("{}", calls))
    events = await collect(orchestrator.reply([], text, genkey="KEY1"))
    assert events[0] == IntentDecided("smalltalk", "heuristic")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there!"
    assert calls == []
    assert len(fake_kobold.generations) == 1
    body = fake_kobold.generations[0]
    assert (body["genkey"], body["max_length"]) == ("KEY1", 60)
    paths = [r.path for r in fake_kobold.requests]
    assert "/api/extra/generate/stream" in paths and "/api/v1/generate" not in paths


async def test_finished_carries_prompt_and_completion_counts(auto_intents, fake_kobold):
    """Finished: the reason, the prompt's token count, and count_tokens of the reply."""
    orchestrator = Orchestrator()
    events = await collect(orchestrator.reply([], "coucou", genkey="K"))
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.finish_reason == "stop"
    assert finished.completion_tokens == await orchestrator.service.count_tokens(
        "Hello there!"
    )
    assert 0 < finished.prompt_tokens < 2048


async def test_replies_share_token_counts_and_context_size(
    kobold_settings, fake_kobold
):
    """A second Orchestrator() reuses the service: no new context or history counts."""
    history = [ChatTurn("user", "a long remembered question")]
    await collect(Orchestrator().reply(history, "hello", genkey="K1"))
    asked = len(fake_kobold.requests)
    await collect(Orchestrator().reply(history, "hello", genkey="K2"))
    paths = [r.path for r in fake_kobold.requests[asked:]]
    assert "/api/extra/true_max_context_length" not in paths
    assert [p for p in paths if p != "/api/extra/tokencount"] == [
        "/api/extra/generate/stream"
    ]


async def test_slash_command_routes_and_is_stripped(kobold_settings, fake_kobold):
    """/code sets the intent and only the rest of the message reaches the model."""
    events = await collect(Orchestrator().reply([], "/code fizzbuzz", genkey="K"))
    assert events[0].intent == "code" and events[0].source == "heuristic"
    prompt = fake_kobold.generations[0]["prompt"]
    assert "fizzbuzz" in prompt and "/code" not in prompt
    assert fake_kobold.generations[0]["temperature"] == PROFILES["code"].temperature


async def test_heuristic_mode_never_calls_the_model(kobold_settings):
    """INTENT_DETECTION=heuristic: even an ambiguous message skips the intent agent."""
    calls: list = []
    orchestrator = Orchestrator(model=answering("code", calls))
    decided = await decide(orchestrator, "Explain black holes")
    assert (decided.intent, decided.source, calls) == ("chat", "heuristic", [])


async def test_llm_mode_skips_the_fast_path(kobold_settings):
    """INTENT_DETECTION=llm: even "coucou" goes to the intent agent."""
    kobold_settings.INTENT_DETECTION = "llm"
    decided = await decide(Orchestrator(model=answering("chat")), "coucou")
    assert (decided.intent, decided.source) == ("chat", "llm")


# --- profiles, prompt and stream limits ---------------------------------------------------


def test_overrides_win_over_the_profile_and_the_system_prompt():
    """Conversation overrides replace the profile's values and the system prompt;
    None keeps them."""
    overrides = ReplyOverrides(system_prompt="Pirate.", max_tokens=9)
    profile = profile_for("code", overrides)
    assert (system_prompt(overrides), profile.max_tokens) == ("Pirate.", 9)
    assert profile.temperature == PROFILES["code"].temperature
    assert system_prompt(ReplyOverrides(max_tokens=9)) == SYSTEM_PROMPT
    assert profile_for("unknown") == PROFILES["chat"]


def test_settings_change_the_profile_defaults(settings):
    """settings.REPLY_PROFILES adjusts a profile; the conversation's overrides still win."""
    settings.REPLY_PROFILES = {"smalltalk": {"max_tokens": 30, "temperature": 0.5}}
    profile = profile_for("smalltalk", ReplyOverrides(temperature=0.9))
    assert (profile.max_tokens, profile.temperature) == (30, 0.9)


async def test_overrides_reach_the_generation(kobold_settings, fake_kobold):
    """The overridden sampler values and system prompt are what KoboldCpp gets."""
    overrides = ReplyOverrides(system_prompt="You are a pirate.", temperature=0.05)
    await collect(Orchestrator().reply([], "hi", overrides=overrides, genkey="K"))
    body = fake_kobold.generations[0]
    assert body["temperature"] == 0.05
    assert body["prompt"].startswith("<|im_start|>system\nYou are a pirate.")


async def test_history_reaches_the_prompt(kobold_settings, fake_kobold):
    """Earlier turns are sent before the new message."""
    history = [ChatTurn("user", "My name is Ada."), ChatTurn("assistant", "Hi Ada!")]
    await collect(Orchestrator().reply(history, "What is my name?", genkey="K"))
    prompt = fake_kobold.generations[0]["prompt"]
    assert prompt.index("My name is Ada.") < prompt.index("Hi Ada!")
    assert prompt.index("Hi Ada!") < prompt.index("What is my name?")


async def test_prompt_too_long_is_raised_before_any_event(kobold_settings, fake_kobold):
    """A message longer than the context: PromptTooLong, nothing yielded or generated."""
    stream = Orchestrator().reply([], "word " * 3000, genkey="K")
    with pytest.raises(PromptTooLong):
        await anext(stream)
    assert fake_kobold.generations == []


async def test_a_stalled_reply_raises_and_aborts(kobold_settings, fake_kobold):
    """No first token in time: StreamStalled after IntentDecided, genkey aborted."""
    kobold_settings.LLM_FIRST_TOKEN_TIMEOUT = 0.3
    fake_kobold.push(Script(first_token_delay=5.0))
    events: list = []
    with pytest.raises(StreamStalled):
        async for event in Orchestrator().reply([], "hello", genkey="STALL"):
            events.append(event)
    assert [type(e) for e in events] == [IntentDecided]
    assert "STALL" in fake_kobold.aborts


# --- simple_reply -----------------------------------------------------------------------


async def test_simple_reply_yields_one_delta_from_the_simple_agent(kobold_settings):
    """simple_reply: IntentDecided, the agent's whole text as one TextDelta, Finished."""
    orchestrator = Orchestrator(model=answering("Salut ! Ça va ?"))
    events = await collect(orchestrator.simple_reply([], "coucou", genkey="S"))
    assert [type(e) for e in events] == [IntentDecided, TextDelta, Finished]
    assert events[1] == TextDelta("Salut ! Ça va ?")
    assert events[2].completion_tokens == await orchestrator.service.count_tokens(
        "Salut ! Ça va ?"
    )


async def test_simple_reply_streams_one_native_generation_with_the_genkey(
    kobold_settings, fake_kobold
):
    """Against KoboldCpp: one streamed generation carrying the caller's genkey, whose
    deltas come out joined."""
    with override_allow_model_requests(True):
        events = await collect(Orchestrator().simple_reply([], "coucou", genkey="S1"))
    assert events[1] == TextDelta("Hello there!")
    assert events[2].finish_reason == "stop"
    assert [g["genkey"] for g in fake_kobold.generations] == ["S1"]
    assert fake_kobold.generations[0]["max_length"] == 60
    paths = [r.path for r in fake_kobold.requests]
    assert "/api/extra/generate/stream" in paths and "/api/v1/generate" not in paths


async def test_simple_reply_on_the_openai_api_sends_the_genkey(
    kobold_settings, fake_kobold
):
    """KOBOLDCPP_API=openai: one streamed /v1/chat/completions carrying the genkey."""
    kobold_settings.KOBOLDCPP_API = "openai"
    with override_allow_model_requests(True):
        events = await collect(Orchestrator().simple_reply([], "coucou", genkey="S2"))
    assert events[1] == TextDelta("Hello there!")
    body = fake_kobold.generations[0]
    assert (body["genkey"], body["stream"]) == ("S2", True)
    assert body["max_tokens"] == PROFILES["smalltalk"].max_tokens
    assert "/v1/chat/completions" in [r.path for r in fake_kobold.requests]


async def simple_events(genkey: str) -> tuple[list, Exception]:
    """The events of simple_reply("hello") until it raises, and the error."""
    events: list = []
    with override_allow_model_requests(True), pytest.raises(Exception) as caught:
        async for event in Orchestrator().simple_reply([], "hello", genkey=genkey):
            events.append(event)
    return events, caught.value


async def test_simple_reply_without_a_first_token_stalls_and_aborts(
    kobold_settings, fake_kobold
):
    """A hung KoboldCpp (no first token): StreamStalled after IntentDecided, within
    LLM_FIRST_TOKEN_TIMEOUT, and the genkey aborted upstream."""
    kobold_settings.LLM_FIRST_TOKEN_TIMEOUT = 0.3
    fake_kobold.push(Script(fault="stall_before_first"))
    events, error = await simple_events("HANG")
    assert isinstance(error, StreamStalled)
    assert [type(e) for e in events] == [IntentDecided]
    assert "HANG" in fake_kobold.aborts


async def test_simple_reply_silent_mid_reply_stalls_and_aborts(
    kobold_settings, fake_kobold
):
    """Silence after the first token longer than LLM_MAX_SILENCE: StreamStalled, the
    genkey aborted, no partial TextDelta."""
    kobold_settings.LLM_MAX_SILENCE = 0.3
    fake_kobold.push(Script(tokens=["Hel", "lo"], fault="stall_mid"))
    events, error = await simple_events("QUIET")
    assert isinstance(error, StreamStalled) and "silent" in str(error)
    assert [type(e) for e in events] == [IntentDecided]
    assert "QUIET" in fake_kobold.aborts


async def test_simple_reply_longer_than_the_total_limit_times_out(
    kobold_settings, fake_kobold
):
    """A reply that keeps coming past LLM_STREAM_TIMEOUT: StreamTimeout, aborted."""
    kobold_settings.LLM_STREAM_TIMEOUT = 0.5
    fake_kobold.push(Script(tokens=["tok "] * 100, delay=0.05))
    events, error = await simple_events("LONG")
    assert isinstance(error, StreamTimeout)
    assert "LONG" in fake_kobold.aborts
