"""The one keep-alive httpx client every caller of KoboldCpp shares, one per event loop.

Daphne and the tests run different loops; a client never leaves the loop it was made on.
"""

import asyncio
import logging
import warnings
import weakref

import httpx

from agents.conf import conf

logger = logging.getLogger(__name__)


def _silence_httpx2_warning() -> None:
    """Hide pydantic-ai's "use httpx2" warning; httpx is this project's choice.

    pydantic_ai/_http.py (warn_if_legacy_httpx_client) emits it when its OpenAI provider
    is handed our client. Installed again with each new client because warning filters
    set at import can be dropped by a `catch_warnings` block (pytest has one per test);
    the call is idempotent.
    """
    warnings.filterwarnings(
        "ignore",
        message=r"`httpx\.AsyncClient` support for OpenAI-compatible providers",
        category=UserWarning,
    )


# Read is unlimited: KoboldCpp sends nothing while a request is queued or the prompt is
# read, and agents.runtime owns the time limits of a stream.
TIMEOUT = httpx.Timeout(connect=10.0, read=None, write=30.0, pool=10.0)
LIMITS = httpx.Limits(
    max_connections=10, max_keepalive_connections=5, keepalive_expiry=300.0
)


def _limits() -> httpx.Limits:
    """10 connections serve one KoboldCpp; a multi-slot backend (BACKEND_CONCURRENCY > 5)
    needs a stream and a side request (abort, token count) per slot."""
    concurrency = conf.BACKEND_CONCURRENCY
    if 2 * concurrency <= LIMITS.max_connections:
        return LIMITS
    return httpx.Limits(
        max_connections=2 * concurrency,
        max_keepalive_connections=LIMITS.max_keepalive_connections,
        keepalive_expiry=LIMITS.keepalive_expiry,
    )


_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]" = (
    weakref.WeakKeyDictionary()
)


def _new_client() -> httpx.AsyncClient:
    _silence_httpx2_warning()
    headers = {"Connection": "keep-alive"}
    password = conf.KOBOLDCPP_PASSWORD
    if password:
        headers["Authorization"] = f"Bearer {password}"
    return httpx.AsyncClient(timeout=TIMEOUT, limits=_limits(), headers=headers)


def get_llm_http_client() -> httpx.AsyncClient:
    """The running loop's shared client, made on first use (or after a close)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = _new_client()
        _clients[loop] = client
        logger.debug("new LLM http client for loop %#x", id(loop))
    return client


async def close_llm_http_client() -> None:
    """Close the running loop's client; the next get makes a new one."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None and not client.is_closed:
        await client.aclose()


async def reset_llm_http_client() -> None:
    """Close the running loop's client and forget those of closed loops.

    The next get makes a fresh client from the settings of that moment (password, URL).
    """
    await close_llm_http_client()
    for loop in [loop for loop in _clients if loop.is_closed()]:
        _clients.pop(loop, None)
