"""Which backends are down: a backend that did not answer is skipped until it answers
again, asked at most once a second (by whichever reply looks first; the others share
the answer). Known per process, keyed by URL."""

import asyncio
import logging
import time

from agents.backend_probe import probe_koboldcpp
from agents.errors import BackendUnreachable, LLMError
from agents.llm_service import LLMService

log = logging.getLogger(__name__)

PROBE_INTERVAL_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 2.0

_down: dict[str, float] = {}  # URL -> when it was last found down (monotonic)


def mark_down(url: str, reason: str) -> None:
    if url not in _down:
        log.warning("backend %s is down (%s): skipped until it answers", url, reason)
    _down[url] = time.monotonic()


def mark_up(url: str) -> None:
    if _down.pop(url, None) is not None:
        log.info("backend %s answers again", url)


def known_down(url: str) -> bool:
    """Down at the last look, without looking again."""
    return url in _down


async def is_down(service: LLMService) -> bool:
    """Whether the backend is down: the last answer while it is fresh, else one probe
    (the time is taken first, so concurrent callers keep the last answer meanwhile)."""
    url = service.base_url
    last = _down.get(url)
    if last is None:
        return False
    if time.monotonic() - last < PROBE_INTERVAL_SECONDS:
        return True
    _down[url] = time.monotonic()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            await probe_koboldcpp(service.backend)
    except (BackendUnreachable, TimeoutError):
        return True
    except LLMError as exc:  # it answers, if not well: it is up
        log.info("backend %s answers the probe with %s", url, exc.code)
    mark_up(url)
    return False


def forget_health() -> None:
    """Forget what is known (tests start servers on ports used before)."""
    _down.clear()
