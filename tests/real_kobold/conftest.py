"""The real-KoboldCpp leg: the app against a running KoboldCpp 1.76 at
KOBOLDCPP_TEST_URL.

Skipped, with the reason, when the variable is unset; .ci/run starts a server and sets
it when the KoboldCpp source folder sits beside the repository.
"""

import asyncio
import os

import httpx
import pytest
from pydantic_ai.models import override_allow_model_requests

from agents.intents import INTENTS
from tests.chat.conftest import (  # noqa: F401  (shared fixtures)
    _fresh_backend_queue,
    make_key,
    make_user,
)

SKIP_REASON = (
    "real KoboldCpp leg skipped: set KOBOLDCPP_TEST_URL to a running KoboldCpp 1.76 "
    "(e.g. http://127.0.0.1:5001; .ci/run starts one when the KoboldCpp source sits "
    "beside the repository)"
)
# Replies of a few dozen tokens: these tests are about the path, not the prose.
SHORT_REPLY_TOKENS = 32
IDLE_DEADLINE_S = 60.0  # a generation left over by another client may still be running


@pytest.fixture(scope="session")
def kobold_url() -> str:
    """The real server's base URL; the leg fails when it is named but silent."""
    url = os.environ.get("KOBOLDCPP_TEST_URL", "").rstrip("/")
    if not url:
        pytest.skip(SKIP_REASON)
    try:
        version = httpx.get(f"{url}/api/extra/version", timeout=10).json()
    except (httpx.HTTPError, ValueError) as exc:
        pytest.fail(f"KOBOLDCPP_TEST_URL={url} does not answer: {exc}")
    if version.get("result") != "KoboldCpp":
        pytest.fail(f"KOBOLDCPP_TEST_URL={url} is not a KoboldCpp: {version}")
    return url


async def perf(url: str) -> dict:
    """GET /api/extra/perf: `idle` is 1 when no generation holds the server's lock."""
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{url}/api/extra/perf")
        response.raise_for_status()
        return response.json()


async def wait_idle(url: str, *, deadline_s: float) -> float:
    """Poll /api/extra/perf until idle; the seconds it took. Fails past the deadline."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    while not (await perf(url))["idle"]:
        if loop.time() - began > deadline_s:
            pytest.fail(f"KoboldCpp at {url} still busy after {deadline_s:g} s")
        await asyncio.sleep(0.05)
    return loop.time() - began


@pytest.fixture(autouse=True)
async def real_kobold_settings(settings, kobold_url):
    """Point the app at the real server (native API, heuristic intents, short replies),
    once it is idle; models may be reached on purpose here."""
    settings.KOBOLDCPP_URL = kobold_url
    settings.KOBOLDCPP_API = "native"
    settings.KOBOLDCPP_PASSWORD = ""
    settings.INTENT_DETECTION = "heuristic"
    # Generous: a full context takes seconds to read on a loaded two-core machine.
    settings.LLM_FIRST_TOKEN_TIMEOUT = 120
    settings.LLM_MAX_SILENCE = 20
    settings.LLM_STREAM_TIMEOUT = 180
    settings.INTENT_TIMEOUT = 60
    settings.REPLY_PROFILES = {
        intent: {"max_tokens": SHORT_REPLY_TOKENS} for intent in INTENTS
    }
    await wait_idle(kobold_url, deadline_s=IDLE_DEADLINE_S)
    with override_allow_model_requests(True):
        yield settings
