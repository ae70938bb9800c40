"""KoboldCpp after 1.76, as the fake speaks it: a final "error" reason (1.117) and
real token counts in non-streamed results (1.82+; 1.76's /v1 usage is a placeholder)."""

import pytest

from agents.errors import GenerationFailed
from agents.events import TextDelta
from kobold_fake.server import Script
from kobold_fake.wire import prompt_text, token_ids
from tests.agents.services import MESSAGES, SETTINGS, service


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_a_failed_generation_raises_after_its_text(make_fake, api):
    """KoboldCpp 1.117's final "error": the text so far is yielded, then
    GenerationFailed (code backend_error) is raised instead of a Finished."""
    fake = make_fake(version="1.117")
    fake.push(Script(tokens=["par", "tial", "x"], fault="fail", fault_at=2))
    seen = []
    with pytest.raises(GenerationFailed) as caught:
        async for event in service(fake, api=api).stream_chat(
            MESSAGES, settings=SETTINGS, genkey="E1"
        ):
            seen.append(event)
    assert seen == [TextDelta("par"), TextDelta("tial")]
    assert caught.value.code == "backend_error"


async def test_a_failed_plain_generation_keeps_its_text(make_fake):
    """A non-streamed "error" raises GenerationFailed carrying the partial text."""
    fake = make_fake(version="1.117")
    fake.push(Script(tokens=["par", "tial", "x"], fault="fail", fault_at=2))
    with pytest.raises(GenerationFailed) as caught:
        await service(fake).generate(MESSAGES, settings=SETTINGS, genkey="E2")
    assert caught.value.text == "partial"


@pytest.mark.parametrize(
    ("version", "api", "counted"),
    [
        ("1.102", "native", True),
        ("1.102", "openai", True),
        ("1.76", "openai", False),  # 1.76's /v1 usage is a 100/100 placeholder
        ("1.76", "native", False),  # 1.76 sends no counts natively
    ],
)
async def test_generate_reports_the_backends_real_token_counts(
    make_fake, version, api, counted
):
    """Non-streamed results carry KoboldCpp's own token counts when they are real."""
    fake = make_fake(version=version)
    fake.push(Script(tokens=["Hel", "lo"]))
    done = await service(fake, api=api).generate(
        MESSAGES, settings=SETTINGS, genkey="U1"
    )
    if counted:
        prompt = len(token_ids(prompt_text(fake.generations[-1])))
        assert (done.prompt_tokens, done.completion_tokens) == (prompt, 2)
    else:
        assert (done.prompt_tokens, done.completion_tokens) == (None, None)
