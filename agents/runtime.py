"""The stream watchdog: time limits on a reply, and an upstream abort when one runs out.

KoboldCpp sends nothing while it reads the prompt: the first token has its own limit.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from agents.conf import conf
from agents.errors import LLMError, StreamStalled, StreamTimeout
from agents.events import BusyRetry

logger = logging.getLogger(__name__)

T = TypeVar("T")


async def watch_stream(
    stream: AsyncIterator[T],
    *,
    genkey: str,
    abort: Callable[[str], Awaitable[object]],
    first_token_timeout: float | None = None,
    max_silence: float | None = None,
    total_timeout: float | None = None,
) -> AsyncIterator[T]:
    """Yield the items of `stream` while they keep coming in time.

    Raises StreamStalled (no first item, or silence between items) or StreamTimeout
    (the whole stream), after `await abort(genkey)` and closing `stream`. BusyRetry
    items are consumed: their backoff counts against no limit, so retries of a busy
    backend end in the stream's own BackendBusy.
    None limits come from settings LLM_FIRST_TOKEN_TIMEOUT, LLM_MAX_SILENCE and
    LLM_STREAM_TIMEOUT at the moment the stream starts.
    """
    first = _limit(first_token_timeout, "LLM_FIRST_TOKEN_TIMEOUT")
    silence = _limit(max_silence, "LLM_MAX_SILENCE")
    total = _limit(total_timeout, "LLM_STREAM_TIMEOUT")
    loop = asyncio.get_running_loop()
    started = loop.time()
    end_at = started + total
    next_at = started + first
    got_first = False
    logger.debug("stream %s: waiting for the first token (limit %.1fs)", genkey, first)
    try:
        while True:
            deadline = min(next_at, end_at)
            try:
                async with asyncio.timeout_at(deadline):
                    item = await anext(stream)
            except StopAsyncIteration:
                logger.debug(
                    "stream %s: ended after %.2fs", genkey, loop.time() - started
                )
                return
            except TimeoutError:
                error = _expired(
                    genkey, got_first, next_at >= end_at, loop.time() - started
                )
                await _abort_quietly(abort, genkey)
                raise error from None
            now = loop.time()
            if isinstance(item, BusyRetry):
                # A busy backend's backoff is no time the model took: the first-token
                # limit starts again after it, the total limit is pushed back by it.
                next_at = now + item.delay + first
                end_at += item.delay
                continue
            if not got_first:
                got_first = True
                logger.debug(
                    "stream %s: first token after %.2fs", genkey, now - started
                )
            next_at = now + silence
            yield item
    finally:
        await _close(stream)


def _limit(value: float | None, setting: str) -> float:
    return float(getattr(conf, setting)) if value is None else float(value)


def _expired(genkey: str, got_first: bool, total_hit: bool, elapsed: float) -> LLMError:
    if total_hit:
        error: LLMError = StreamTimeout(f"the reply took longer than {elapsed:.1f}s")
    elif got_first:
        error = StreamStalled("the model went silent mid-reply")
    else:
        error = StreamStalled("the model sent no first token in time")
    logger.warning("stream %s: %s after %.2fs; aborting", genkey, error, elapsed)
    return error


async def _abort_quietly(
    abort: Callable[[str], Awaitable[object]], genkey: str
) -> None:
    # Shielded: the abort must reach KoboldCpp even if our caller is being cancelled,
    # or the orphan generation keeps the backend's single slot busy.
    task = asyncio.ensure_future(abort(genkey))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.error("stream %s: upstream abort failed", genkey, exc_info=True)


async def _close(stream: AsyncIterator) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
