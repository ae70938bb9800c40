"""The orchestrator: intent routing with fallback, profiles, and the reply streams.

pydantic-ai test models where no backend is meant to answer the intent agent; the fake
KoboldCpp (real HTTP) for the streams and for KoboldNativeModel end to end.
"""

import pytest
from pydantic_ai.messages import ModelResponse, TextPart
from pydantic_ai.models import override_allow_model_requests
from pydantic_ai.models.function import AgentInfo, FunctionModel

from agents.errors import PromptTooLong, StreamStalled
from agents.events import ChatTurn, Finished, IntentDecided, TextDelta
from agents.orchestrator import Orchestrator, ReplyOverrides, parse_intent_output
from agents.profiles import PROFILES, profile_for
from kobold_fake.server import Script


@pytest.fixture
def auto_intents(kobold_settings):
    kobold_settings.INTENT_DETECTION = "auto"
    return kobold_settings


def answering(text: str, calls: list | None = None) -> FunctionModel:
    """A FunctionModel that always answers `text` (and records its calls)."""

    def answer(messages, info: AgentInfo) -> ModelResponse:
        if calls is not None:
            calls.append(messages)
        return ModelResponse(parts=[TextPart(text)])

    return FunctionModel(answer)


async def collect(events) -> list:
    return [event async for event in events]


# --- heuristic fast path ------------------------------------------------------------


@pytest.mark.parametrize("text", ["coucou", "Bonjour", "thanks!"])
async def test_smalltalk_is_one_short_generation(auto_intents, fake_kobold, text):
    """Greetings and thanks: heuristic intent, then ONE short (smalltalk) generation."""
    calls: list = []
    orchestrator = Orchestrator(model=answering("{}", calls))
    events = await collect(orchestrator.reply([], text, genkey="KEY1"))
    assert events[0] == IntentDecided(
        "smalltalk", "heuristic", 0.95, "fr" if text != "thanks!" else "en"
    )
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
    orchestrator = Orchestrator(model=answering('{"intent": "code"}', calls))
    decided = await orchestrator.detect_intent("Explain black holes", [])
    assert (decided.intent, decided.source, calls) == ("chat", "heuristic", [])


async def test_llm_mode_skips_the_fast_path(kobold_settings):
    """INTENT_DETECTION=llm: even "coucou" goes to the intent agent."""
    kobold_settings.INTENT_DETECTION = "llm"
    orchestrator = Orchestrator(model=answering('{"intent": "chat", "language": "fr"}'))
    decided = await orchestrator.detect_intent("coucou", [])
    assert (decided.intent, decided.source, decided.language) == ("chat", "llm", "fr")


# --- the intent agent and its fallbacks ------------------------------------------------


async def test_intent_from_clean_json(auto_intents):
    """Clean JSON from the intent agent decides the intent, source "llm"."""
    model = answering('{"intent": "code", "confidence": 0.9, "language": "en"}')
    decided = await Orchestrator(model=model).detect_intent("Explain black holes", [])
    assert decided == IntentDecided("code", "llm", 0.9, "en")


async def test_intent_from_json_inside_noisy_text(auto_intents, fake_kobold):
    """KoboldNativeModel end to end: prose and fences around the JSON still give "llm"."""
    fake_kobold.push(
        Script(
            tokens=['Sure!\n```json\n{"intent": "creative", "confidence": 0.7}\n```']
        ),
        Script(tokens=["Once", " upon", " a time"]),
    )
    with override_allow_model_requests(True):
        events = await collect(Orchestrator().reply([], "the sea, please", genkey="G"))
    assert events[0] == IntentDecided("creative", "llm", 0.7, "en")
    assert [g["genkey"] == "G" for g in fake_kobold.generations] == [False, True]
    assert fake_kobold.generations[1]["max_length"] == PROFILES["creative"].max_tokens


async def test_fallback_on_timeout_aborts_the_intent_generation(
    auto_intents, fake_kobold
):
    """The intent agent slower than INTENT_TIMEOUT: "fallback", its generation aborted,
    and the reply still streams."""
    auto_intents.INTENT_TIMEOUT = 0.3
    fake_kobold.push(Script(first_token_delay=5.0), Script())
    with override_allow_model_requests(True):
        events = await collect(Orchestrator().reply([], "Explain tides", genkey="R"))
    assert (events[0].intent, events[0].source) == ("chat", "fallback")
    assert fake_kobold.aborts[0] == fake_kobold.generations[0]["genkey"]
    assert isinstance(events[-1], Finished)


async def test_fallback_on_invalid_output(auto_intents, caplog):
    """Output that is not an IntentDecision (retries exhausted): "fallback", logged."""
    orchestrator = Orchestrator(model=answering("I think it is about code."))
    decided = await orchestrator.detect_intent("def f(): pass  # why?", [])
    assert (decided.intent, decided.source) == ("code", "fallback")
    assert "UnexpectedModelBehavior" in caplog.text


async def test_fallback_on_backend_down(auto_intents):
    """KoboldCpp not running: the intent agent fails, the heuristic answers."""
    auto_intents.KOBOLDCPP_URL = "http://127.0.0.1:9"
    auto_intents.LLM_BUSY_RETRIES = 0
    with override_allow_model_requests(True):
        decided = await Orchestrator().detect_intent("write a poem about rain", [])
    assert (decided.intent, decided.source) == ("creative", "fallback")


@pytest.mark.parametrize(
    "output",
    [
        '{"intent": "summarize"}',
        'Here you go:\n```json\n{"intent": "summarize"}\n```',
        'The JSON is {"intent": "summarize"} as asked.',
        {"intent": "summarize"},
    ],
)
def test_parse_intent_output_accepts_json_text_fences_and_dicts(output):
    """A str output is parsed as JSON, bare, fenced or amid text."""
    assert parse_intent_output(output).intent == "summarize"


def test_parse_intent_output_refuses_text_without_json():
    """No JSON object at all is a ValueError (which the orchestrator turns into a fallback)."""
    with pytest.raises(ValueError):
        parse_intent_output("summarize")


# --- profiles, prompt and stream limits ---------------------------------------------------


def test_overrides_win_over_the_profile():
    """Conversation overrides replace the profile's values; None keeps them."""
    profile = profile_for("code", ReplyOverrides(system_prompt="Pirate.", max_tokens=9))
    assert (profile.system_prompt, profile.max_tokens) == ("Pirate.", 9)
    assert profile.temperature == PROFILES["code"].temperature
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
    orchestrator = Orchestrator(model=answering("Salut !"))
    events = await collect(orchestrator.simple_reply([], "coucou", genkey="S"))
    assert [type(e) for e in events] == [IntentDecided, TextDelta, Finished]
    assert events[1] == TextDelta("Salut !")
    assert events[2].completion_tokens == await orchestrator.service.count_tokens(
        "Salut !"
    )


async def test_simple_reply_is_one_native_generation_with_the_genkey(
    kobold_settings, fake_kobold
):
    """Against KoboldCpp: one non-streamed /api/v1/generate carrying the caller's genkey."""
    with override_allow_model_requests(True):
        events = await collect(Orchestrator().simple_reply([], "coucou", genkey="S1"))
    assert events[1] == TextDelta("Hello there!")
    assert [g["genkey"] for g in fake_kobold.generations] == ["S1"]
    assert fake_kobold.generations[0]["max_length"] == 60
    assert "/api/v1/generate" in [r.path for r in fake_kobold.requests]


async def test_simple_reply_on_the_openai_api_sends_the_genkey(
    kobold_settings, fake_kobold
):
    """KOBOLDCPP_API=openai: one /v1/chat/completions that carries the genkey too."""
    kobold_settings.KOBOLDCPP_API = "openai"
    with override_allow_model_requests(True):
        events = await collect(Orchestrator().simple_reply([], "coucou", genkey="S2"))
    assert events[1] == TextDelta("Hello there!")
    assert [g["genkey"] for g in fake_kobold.generations] == ["S2"]
    assert "/v1/chat/completions" in [r.path for r in fake_kobold.requests]
