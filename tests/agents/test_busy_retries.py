"""Retries of a busy KoboldCpp (HTTP 503) have their own budget: LLM_BUSY_RETRIES with
backoff, not the first-token or total limit of the stream watchdog."""

import asyncio
import dataclasses

import pytest

from agents.errors import BackendBusy
from agents.events import BusyRetry, ChatTurn, Finished, TextDelta
from agents.llm_service import GenerationSettings, LLMService
from agents.runtime import watch_stream
from kobold_fake.server import Script

MESSAGES = [ChatTurn("user", "Hi")]


async def no_abort(genkey: str) -> None:
    return None


def service(fake, *, retries: int, backoff: float) -> LLMService:
    svc = LLMService(base_url=fake.url, api="native", busy_retries=retries)
    svc.backend = dataclasses.replace(svc.backend, busy_backoff=backoff)
    return svc


async def test_backoff_does_not_count_against_the_first_token_limit():
    """A BusyRetry's wait restarts the first-token clock after it: a first item that
    comes after a long backoff is in time."""

    async def stream():
        yield BusyRetry(delay=0.4, attempt=1)
        await asyncio.sleep(0.4)
        yield "first"

    items = [
        item
        async for item in watch_stream(
            stream(), genkey="B0", abort=no_abort, first_token_timeout=0.2
        )
    ]
    assert items == ["first"]


async def test_a_busy_backend_answering_later_still_streams(fake_kobold):
    """Two 503s whose backoff (0.5 s + 1 s) is longer than the first-token and total
    limits (1 s): the third attempt streams its reply."""
    fake_kobold.push(Script(fault="http_503"), Script(fault="http_503"), Script())
    svc = service(fake_kobold, retries=2, backoff=0.5)
    stream = svc.stream_chat(MESSAGES, settings=GenerationSettings(), genkey="B1")
    events = [
        event
        async for event in watch_stream(
            stream,
            genkey="B1",
            abort=svc.abort,
            first_token_timeout=1.0,
            total_timeout=1.0,
        )
    ]
    assert events[-1] == Finished("stop")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there!"
    assert not any(isinstance(e, BusyRetry) for e in events)
    assert len(fake_kobold.generations) == 3


async def test_retries_running_out_end_in_backend_busy(make_fake):
    """KoboldCpp without a queue (--multiuser 0) busy with another reply: the retries
    run out in BackendBusy (backend_busy), not in a stall, though their backoff is
    longer than the first-token limit."""
    fake = make_fake(multiuser=0)
    fake.push(Script(fault="stall_before_first"))
    holder = LLMService(base_url=fake.url, api="native", template="chatml")
    held = holder.stream_chat(MESSAGES, settings=GenerationSettings(), genkey="HOLD")
    first = asyncio.ensure_future(anext(held))
    svc = service(fake, retries=2, backoff=0.3)
    try:
        assert await fake.await_until(lambda: fake.active_generations == 1)
        stream = svc.stream_chat(MESSAGES, settings=GenerationSettings(), genkey="B2")
        with pytest.raises(BackendBusy) as caught:
            async for _ in watch_stream(
                stream, genkey="B2", abort=svc.abort, first_token_timeout=0.5
            ):
                pass
        assert caught.value.code == "backend_busy"
        assert "B2" not in fake.aborts  # a busy answer is no stall: nothing to abort
    finally:
        await holder.abort("HOLD")
        await first
        await held.aclose()
