"""The intent request and the reply share their prompt's start, whatever the profile,
so KoboldCpp reads again only what follows the new user message (native API, ChatML,
prompts as the fake KoboldCpp received them)."""

import pytest
from pydantic_ai.models import override_allow_model_requests

from agents.builder import INTENT_INSTRUCTIONS
from agents.events import ChatTurn
from agents.intents import INTENTS
from agents.orchestrator import Orchestrator, ReplyOverrides
from agents.profiles import PROFILES, SYSTEM_PROMPT
from kobold_fake.server import Script
from tests.agents.orchestration import collect

HISTORY = [ChatTurn("user", "My name is Ada."), ChatTurn("assistant", "Hi Ada!")]
TEXT = "Tell me something about the sea."


def shared_start(system: str) -> str:
    """System prompt, history and the new message, as ChatML renders them."""
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n"
        "<|im_start|>user\nMy name is Ada.<|im_end|>\n"
        "<|im_start|>assistant\nHi Ada!<|im_end|>\n"
        f"<|im_start|>user\n{TEXT}<|im_end|>\n"
    )


@pytest.fixture
def llm_intents(kobold_settings):
    kobold_settings.INTENT_DETECTION = "llm"
    return kobold_settings


@pytest.mark.parametrize("intent", INTENTS)
@pytest.mark.parametrize("method", ["reply", "simple_reply"])
async def test_intent_request_and_reply_share_the_start_for_every_profile(
    llm_intents, fake_kobold, intent, method
):
    """Whatever profile the intent picks, both prompts start with the same system
    prompt, history and message; only the instruction turn after it differs."""
    fake_kobold.push(Script(tokens=[intent]), Script())
    run = getattr(Orchestrator(), method)
    with override_allow_model_requests(True):
        events = await collect(run(HISTORY, TEXT, genkey="P"))
    assert (events[0].intent, events[0].source) == (intent, "llm")
    start = shared_start(SYSTEM_PROMPT)
    asked, replied = [body["prompt"] for body in fake_kobold.generations]
    assert asked.startswith(start) and replied.startswith(start)
    assert asked[len(start) :] == (
        f"<|im_start|>system\n{INTENT_INSTRUCTIONS}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert replied[len(start) :] == (
        f"<|im_start|>system\n{PROFILES[intent].instructions}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


async def test_the_conversation_system_prompt_heads_both_requests(
    llm_intents, fake_kobold
):
    """A conversation's own system prompt replaces the default at the start of both."""
    fake_kobold.push(Script(tokens=["code"]), Script())
    overrides = ReplyOverrides(system_prompt="You are a pirate.")
    with override_allow_model_requests(True):
        await collect(
            Orchestrator().reply(HISTORY, TEXT, overrides=overrides, genkey="O")
        )
    start = shared_start("You are a pirate.")
    assert all(body["prompt"].startswith(start) for body in fake_kobold.generations)


async def test_a_trimmed_history_is_the_same_for_both(make_fake, llm_intents):
    """A history too long for the context is cut once, to what leaves room for the
    largest reply of any profile: the intent request carries the same turns."""
    small = make_fake(max_context=700)
    llm_intents.KOBOLDCPP_URL = small.url
    llm_intents.REPLY_PROFILES = {
        i: {"max_tokens": 100 + 40 * n} for n, i in enumerate(INTENTS)
    }
    history = [ChatTurn("user", f"turn {i} " + "word " * 30) for i in range(40)]
    small.push(Script(tokens=["smalltalk"]), Script())
    with override_allow_model_requests(True):
        await collect(Orchestrator().reply(history, TEXT, genkey="T"))
    asked, replied = [body["prompt"] for body in small.generations]
    cut = asked.index(INTENT_INSTRUCTIONS)
    assert "turn 39 " in asked and "turn 0 " not in asked
    assert replied.startswith(asked[: cut - len("<|im_start|>system\n")])
