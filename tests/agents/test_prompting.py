"""Prompt building against the fake KoboldCpp's tokenizer and context size."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_ai.messages import (
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    UserPromptPart,
)

from agents.errors import PromptTooLong
from agents.events import ChatTurn
from agents.llm_service import LLMService
from agents.prompting import Prompt, PromptBuilder, as_messages, turns_from_messages
from kobold_fake.server import FakeKobold

MAX_TOKENS = 100
# A long instruction with a short reply, a short one with a long reply.
ENDINGS = [("Answer in one short sentence, " * 8, 20), ("Be clear.", MAX_TOKENS)]
words = st.text(alphabet="abcdefgh .,!?", min_size=1, max_size=300)
turns = st.lists(
    st.builds(ChatTurn, st.sampled_from(["user", "assistant"]), words), max_size=60
)


@pytest.fixture(scope="module")
def small_kobold():
    """A fake KoboldCpp with a 512-token context, shared by the module's examples."""
    server = FakeKobold(max_context=512)
    server.start()
    yield server
    server.stop()


def _builder(server: FakeKobold) -> PromptBuilder:
    return PromptBuilder(LLMService(base_url=server.url, api="native"))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(history=turns, text=words)
async def test_trimmed_prompt_fits_and_keeps_system_and_last_message(
    small_kobold, history, text
):
    """Random long histories: the rendered prompt fits context − max_tokens, and the
    system prompt and the new message are always there, in order."""
    builder = _builder(small_kobold)
    prompt = await builder.build(
        system_prompt="Be nice.", history=history, text=text, endings=ENDINGS
    )
    for instruction, max_tokens in ENDINGS:
        rendered = builder.service.template.render(prompt.ending_with(instruction))
        assert await builder.service.count_tokens(rendered) <= 512 - max_tokens
    assert prompt.turns[0] == ChatTurn("system", "Be nice.")
    assert prompt.turns[-1] == ChatTurn("user", text)
    kept = prompt.turns[1:-1]
    assert kept == history[len(history) - len(kept) :]


async def test_oldest_turns_are_dropped_first(small_kobold):
    """When history overflows, the newest turns stay and the oldest go."""
    history = [ChatTurn("user", f"turn {i} " + "word " * 40) for i in range(30)]
    prompt = await _builder(small_kobold).build(
        system_prompt="S", history=history, text="last", endings=[("", MAX_TOKENS)]
    )
    kept = prompt.turns[1:-1]
    assert 0 < len(kept) < 30
    assert kept[-1] == history[-1]
    assert prompt.dropped == 30 - len(kept)


async def test_history_turns_limits_the_history(small_kobold):
    """A profile's history_turns caps how many earlier turns are sent."""
    history = [ChatTurn("user", f"t{i}") for i in range(10)]
    prompt = await _builder(small_kobold).build(
        system_prompt="S", history=history, text="x", endings=[], history_turns=3
    )
    assert prompt.turns[1:-1] == history[-3:]


async def test_a_message_too_long_for_the_context_is_refused(small_kobold):
    """A user message that alone overflows raises PromptTooLong (code bad_request)."""
    with pytest.raises(PromptTooLong) as caught:
        await _builder(small_kobold).build(
            system_prompt="S",
            history=[],
            text="word " * 600,
            endings=[("", MAX_TOKENS)],
        )
    assert caught.value.code == "bad_request"


async def test_context_size_is_asked_once(small_kobold):
    """true_max_context_length is fetched once per builder."""

    def asked() -> int:
        return sum("true_max_context" in r.path for r in small_kobold.requests)

    before = asked()
    builder = _builder(small_kobold)
    for text in ("a", "b", "c"):
        await builder.build(system_prompt="S", history=[], text=text, endings=[])
    assert asked() - before == 1


def test_turns_from_messages_puts_one_system_turn_first():
    """Instructions and system prompts merge into one leading system turn; requests
    become user turns and responses assistant turns, in order."""
    messages = [
        ModelRequest(parts=[SystemPromptPart("Sys."), UserPromptPart("Hi")]),
        ModelResponse(parts=[TextPart("Hello!")]),
        ModelRequest(parts=[UserPromptPart(["Look:", "again"])]),
    ]
    assert turns_from_messages(messages, ["Be brief."]) == [
        ChatTurn("system", "Be brief.\n\nSys."),
        ChatTurn("user", "Hi"),
        ChatTurn("assistant", "Hello!"),
        ChatTurn("user", "Look:\nagain"),
    ]


async def test_short_conversation_needs_no_token_count(small_kobold):
    """A prompt whose UTF-8 size is within the budget is sent as is: no tokencount
    round trip delays the first token; its size is counted afterwards on demand."""
    builder = _builder(small_kobold)
    await builder.max_context()
    asked = len(small_kobold.requests)
    history = [ChatTurn("user", "hi"), ChatTurn("assistant", "hello!")]
    prompt = await builder.build(
        system_prompt="Be nice.",
        history=history,
        text="how are you?",
        endings=[("Be clear.", 100)],
    )
    assert len(small_kobold.requests) == asked
    assert prompt.tokens is None and prompt.turns[1:3] == history
    rendered = builder.service.template.render(prompt.ending_with("Be clear."))
    assert 0 < await builder.tokens(prompt, "Be clear.") <= len(rendered.encode())


def test_a_later_system_prompt_stays_in_place():
    """Only the leading system prompts merge: one after the conversation (a request's
    instruction turn) stays where it is."""
    messages = [
        ModelRequest(parts=[SystemPromptPart("Sys."), UserPromptPart("Hi")]),
        ModelRequest(parts=[SystemPromptPart("Answer briefly.")]),
    ]
    assert turns_from_messages(messages, ["Be kind."]) == [
        ChatTurn("system", "Be kind.\n\nSys."),
        ChatTurn("user", "Hi"),
        ChatTurn("system", "Answer briefly."),
    ]


def test_as_messages_round_trips_through_turns_from_messages():
    """Turns made messages come back as the same turns (as the chat template sees
    them on both model paths)."""
    prompt = Prompt(
        [ChatTurn("system", "S"), ChatTurn("user", "a"), ChatTurn("assistant", "b"),
         ChatTurn("user", "c")], None, 0,
    )  # fmt: skip
    turns = prompt.ending_with("Be brief.")
    assert turns[-1] == ChatTurn("system", "Be brief.") and prompt.ending_with("") == (
        prompt.turns
    )
    assert turns_from_messages(as_messages(turns)) == turns


async def test_the_counted_start_adds_the_instruction_turn(small_kobold):
    """Once the start was counted (a long history), a request's size is that count
    plus its instruction turn."""
    builder = _builder(small_kobold)
    history = [ChatTurn("user", f"turn {i} " + "word " * 40) for i in range(30)]
    prompt = await builder.build(
        system_prompt="S", history=history, text="last", endings=ENDINGS
    )
    extra = await builder.ending_cost("Be clear.")
    assert prompt.tokens is not None and extra > 0
    assert await builder.tokens(prompt, "Be clear.") == prompt.tokens + extra
