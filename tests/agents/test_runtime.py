"""The stream watchdog: first-token, silence and total limits, each aborting."""

import asyncio

import pytest

from agents.errors import StreamStalled, StreamTimeout
from agents.events import ChatTurn, Finished, TextDelta
from agents.llm_service import GenerationSettings, LLMService
from agents.runtime import watch_stream
from kobold_fake.server import Script

MESSAGES = [ChatTurn("user", "Hi")]


def watched(fake, genkey: str, **limits):
    svc = LLMService(base_url=fake.url, api="native")
    stream = svc.stream_chat(MESSAGES, settings=GenerationSettings(), genkey=genkey)
    return watch_stream(stream, genkey=genkey, abort=svc.abort, **limits)


async def drain(stream, seen: list) -> None:
    async for event in stream:
        seen.append(event)


async def test_a_healthy_stream_passes_through(fake_kobold):
    """Within the limits every event comes out unchanged."""
    fake_kobold.push(Script(tokens=["a", "b"], delay=0.05))
    seen: list = []
    await drain(watched(fake_kobold, "OK1", max_silence=1, total_timeout=5), seen)
    assert seen == [TextDelta("a"), TextDelta("b"), Finished("stop")]
    assert fake_kobold.aborts == []


async def test_no_first_token_raises_stalled_and_aborts(fake_kobold):
    """No first token within the limit: StreamStalled, and the genkey is aborted."""
    fake_kobold.push(Script(fault="stall_before_first"))
    with pytest.raises(StreamStalled):
        await drain(watched(fake_kobold, "ST1", first_token_timeout=0.3), [])
    assert fake_kobold.aborts == ["ST1"]


async def test_silence_mid_stream_raises_stalled_and_aborts(fake_kobold):
    """Silence after some tokens: StreamStalled after those tokens, genkey aborted."""
    fake_kobold.push(Script(tokens=["a", "b", "c"], fault="stall_mid", fault_at=1))
    seen: list = []
    with pytest.raises(StreamStalled):
        await drain(watched(fake_kobold, "ST2", max_silence=0.3), seen)
    assert seen == [TextDelta("a")]
    assert fake_kobold.aborts == ["ST2"]


async def test_total_limit_raises_timeout_and_aborts(fake_kobold):
    """A stream that keeps going past the total limit: StreamTimeout, genkey aborted."""
    fake_kobold.push(Script(tokens=["t"] * 100, delay=0.05))
    seen: list = []
    with pytest.raises(StreamTimeout):
        await drain(watched(fake_kobold, "TT1", max_silence=1, total_timeout=0.4), seen)
    assert 0 < len(seen) < 100
    assert fake_kobold.aborts == ["TT1"]


async def test_limits_default_to_settings_read_at_call_time(settings, fake_kobold):
    """With no explicit limit, LLM_FIRST_TOKEN_TIMEOUT as set now applies."""
    settings.LLM_FIRST_TOKEN_TIMEOUT = 0.2
    fake_kobold.push(Script(fault="stall_before_first"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(StreamStalled):
        await drain(watched(fake_kobold, "ST3"), [])
    assert loop.time() - started < 5


async def test_expiry_closes_the_inner_stream_and_survives_a_failing_abort():
    """On expiry the inner stream is closed; an abort error does not hide the stall."""
    closed = asyncio.Event()
    aborted: list[str] = []

    async def silent():
        try:
            yield TextDelta("x")
            await asyncio.sleep(10)
        finally:
            closed.set()

    async def failing_abort(genkey: str) -> bool:
        aborted.append(genkey)
        raise RuntimeError("backend gone")

    with pytest.raises(StreamStalled):
        await drain(
            watch_stream(silent(), genkey="G", abort=failing_abort, max_silence=0.1), []
        )
    assert closed.is_set() and aborted == ["G"]


async def test_abort_runs_to_completion_even_if_the_caller_is_cancelled():
    """The upstream abort is shielded: cancelling the consumer does not cut it short."""
    finished: list[str] = []

    async def silent():
        await asyncio.sleep(10)
        yield TextDelta("never")

    async def slow_abort(genkey: str) -> bool:
        await asyncio.sleep(0.3)
        finished.append(genkey)
        return True

    task = asyncio.create_task(
        drain(
            watch_stream(
                silent(), genkey="C", abort=slow_abort, first_token_timeout=0.1
            ),
            [],
        )
    )
    await asyncio.sleep(0.2)  # the stall fired; the abort is under way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)
    assert finished == ["C"]
