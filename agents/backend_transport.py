"""HTTP exchanges with KoboldCpp on the shared client; statuses become typed errors.

Retries a 503 ("Server is busy") with backoff; logs every request, never a secret.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from agents.errors import (
    BackendAuthError,
    BackendBusy,
    BackendProtocolError,
    BackendUnreachable,
)
from agents.events import Finished, TextDelta
from agents.http_client import get_llm_http_client
from agents.sse import StreamDecoder

logger = logging.getLogger("agents.llm_service")

BUSY_BACKOFF_S = 0.25


@dataclass(frozen=True)
class Backend:
    """Where KoboldCpp is and how to talk to it."""

    base_url: str
    password: str = ""
    busy_retries: int = 4

    def headers(self) -> dict[str, str]:
        # The shared client carries the settings' password; an explicit one wins.
        if self.password:
            return {"Authorization": f"Bearer {self.password}"}
        return {}

    async def open(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        genkey: str | None = None,
        retry_busy: bool = True,
    ) -> httpx.Response:
        """Send a request and return the 200 response with its body still unread.

        The caller must close it (`aclose`). Raises BackendUnreachable, BackendBusy,
        BackendAuthError or BackendProtocolError.
        """
        client = get_llm_http_client()
        retries = self.busy_retries if retry_busy else 0
        for attempt in range(retries + 1):
            request = client.build_request(
                method, self.base_url + path, json=json, headers=self.headers()
            )
            response = await self._send(client, request, path, genkey)
            logger.info(
                "%s %s genkey=%s -> %s", method, path, genkey, response.status_code
            )
            if response.status_code == 200:
                return response
            body = await _read_quietly(response)
            if response.status_code == 503 and attempt < retries:
                delay = BUSY_BACKOFF_S * 2**attempt
                logger.info("backend busy on %s, retry in %.2fs", path, delay)
                await asyncio.sleep(delay)
                continue
            raise _status_error(response.status_code, path, body)
        raise AssertionError("unreachable")  # the loop always returns or raises

    async def stream_events(
        self, path: str, body: dict, *, api: str, genkey: str
    ) -> AsyncIterator[TextDelta | Finished]:
        """POST a streaming generation and yield its decoded events, then close it.

        Raises BackendProtocolError when the stream is cut or ends before a finish: the
        deltas already yielded are the partial reply.
        """
        response = await self.open("POST", path, json=body, genkey=genkey)
        decoder = StreamDecoder(api)
        try:
            async for chunk in response.aiter_bytes():
                for event in decoder.feed(chunk):
                    yield event
            for event in decoder.close():
                yield event
        except httpx.TransportError as exc:
            logger.warning("stream %s cut: %r", genkey, exc, exc_info=True)
            raise BackendProtocolError(f"stream cut mid-reply ({exc!r})") from exc
        finally:
            await response.aclose()
        if decoder.finished is None:
            logger.warning("stream %s ended without a finish reason", genkey)
            raise BackendProtocolError("the stream ended before the reply was finished")
        logger.debug("stream %s finished: %s", genkey, decoder.finished.finish_reason)

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        genkey: str | None = None,
        retry_busy: bool = True,
    ) -> object:
        """Send a request and return its decoded JSON body."""
        response = await self.open(
            method, path, json=json, genkey=genkey, retry_busy=retry_busy
        )
        try:
            await response.aread()
        except httpx.TransportError as exc:
            raise BackendProtocolError(f"{path}: body cut ({exc!r})") from exc
        finally:
            await response.aclose()
        try:
            return response.json()
        except ValueError as exc:
            raise BackendProtocolError(f"{path}: body is not JSON") from exc

    async def _send(
        self,
        client: httpx.AsyncClient,
        request: httpx.Request,
        path: str,
        genkey: str | None,
    ) -> httpx.Response:
        try:
            return await client.send(request, stream=True)
        except httpx.TransportError as exc:
            logger.warning(
                "%s %s genkey=%s failed: %r",
                request.method,
                path,
                genkey,
                exc,
                exc_info=True,
            )
            raise BackendUnreachable(
                f"no answer from KoboldCpp at {self.base_url} ({type(exc).__name__})"
            ) from exc


async def _read_quietly(response: httpx.Response) -> bytes:
    try:
        return await response.aread()
    except httpx.TransportError:
        return b""
    finally:
        await response.aclose()


def _status_error(status: int, path: str, body: bytes) -> Exception:
    snippet = body[:200].decode("utf-8", "replace")
    logger.warning("%s answered HTTP %s: %s", path, status, snippet)
    if status == 503:
        return BackendBusy(status=status)
    if status == 401:
        return BackendAuthError(status=status)
    return BackendProtocolError(f"HTTP {status} from {path}: {snippet}", status=status)
