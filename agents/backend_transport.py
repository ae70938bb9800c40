"""HTTP exchanges with KoboldCpp on the shared client; statuses become typed errors.

Retries a 503 ("Server is busy") with backoff, announced to streams as BusyRetry events;
splits a streamed reply's thinking from its answer; logs every request, never a secret.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field, replace

import httpx

from agents import start_trace
from agents.errors import (
    BackendAuthError,
    BackendBusy,
    BackendProtocolError,
    BackendUnreachable,
    GenerationFailed,
)
from agents.events import BusyRetry, Finished, ReasoningDelta, StreamEvent, TextDelta
from agents.http_client import get_llm_http_client
from agents.reasoning import ReasoningSplitter
from agents.sse import Decoded, StreamDecoder

logger = logging.getLogger("agents.llm_service")

BUSY_BACKOFF_S = 0.25


@dataclass(frozen=True)
class Backend:
    """Where KoboldCpp is and how to talk to it."""

    base_url: str
    password: str = field(repr=False)  # never in a log line or a traceback
    busy_retries: int
    busy_backoff: float = BUSY_BACKOFF_S  # the first retry's wait; doubled each time

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
        attempts = self._attempts(method, path, json, genkey, retry_busy)
        async with aclosing(attempts):
            async for item in attempts:
                if isinstance(item, httpx.Response):
                    return item
        raise AssertionError("unreachable")  # the attempts end in a response or raise

    async def _attempts(
        self,
        method: str,
        path: str,
        json: object,
        genkey: str | None,
        retry_busy: bool,
    ) -> AsyncIterator[BusyRetry | httpx.Response]:
        """The 200 response, after a BusyRetry before each wait on a 503."""
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
                yield response
                return
            body = await _read_quietly(response)
            if response.status_code == 503 and attempt < retries:
                delay = self.busy_backoff * 2**attempt
                logger.info("backend busy on %s, retry in %.2fs", path, delay)
                yield BusyRetry(delay=delay, attempt=attempt + 1)
                await asyncio.sleep(delay)
                continue
            raise _status_error(response.status_code, path, body)

    async def stream_events(
        self, path: str, body: dict, *, api: str, genkey: str
    ) -> AsyncIterator[StreamEvent | BusyRetry]:
        """POST a streaming generation and yield its decoded events, then close it.

        The reply's thinking comes as ReasoningDelta, its answer as TextDelta, whether
        the server split them (OpenAI `reasoning_content`) or the text holds the
        model's markers (agents.reasoning); Finished says whether the thinking was
        left unclosed. A BusyRetry comes before each wait on a busy (503) backend.
        Raises BackendProtocolError when the stream is cut or ends before a finish, and
        GenerationFailed on a finish reason "error": the deltas already yielded are
        the partial reply.
        """
        start_trace.mark("upstream_request")
        response = None
        attempts = self._attempts("POST", path, body, genkey, True)
        async with aclosing(attempts):
            async for item in attempts:
                if isinstance(item, httpx.Response):
                    response = item
                    break
                yield item
        assert response is not None  # the attempts end in a response or raise
        start_trace.mark("upstream_headers")
        decoder = StreamDecoder(api)
        splitter = ReasoningSplitter()
        try:
            async for chunk in response.aiter_bytes():
                start_trace.mark("upstream_chunk")
                for piece in _split(splitter, decoder.feed(chunk)):
                    yield _checked(piece, genkey)
            for piece in _split(splitter, decoder.close()):
                yield _checked(piece, genkey)
        except httpx.TransportError as exc:
            logger.warning("stream %s cut: %r", genkey, exc, exc_info=True)
            raise BackendProtocolError(f"stream cut mid-reply ({exc!r})") from exc
        finally:
            await response.aclose()
        if decoder.finished is None:
            logger.warning("stream %s ended without a finish reason", genkey)
            raise BackendProtocolError("the stream ended before the reply was finished")
        logger.debug(
            "stream %s finished: %s (thinking: %s%s)",
            genkey,
            decoder.finished.finish_reason,
            splitter.format.name if splitter.format else "none",
            ", unclosed" if splitter.unclosed_reasoning else "",
        )

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


def _split(splitter: ReasoningSplitter, events: list[Decoded]) -> list[StreamEvent]:
    """`events` as thinking and answer; at the finish, what the splitter still held."""
    pieces: list[StreamEvent] = []
    for event in events:
        if isinstance(event, TextDelta):
            pieces += splitter.feed(event.text)
        elif isinstance(event, ReasoningDelta):
            pieces += splitter.feed_reasoning(event.text)
        else:
            pieces += splitter.finish()
            unclosed = splitter.unclosed_reasoning
            pieces.append(replace(event, reasoning_unclosed=unclosed))
    return pieces


def _checked(event: StreamEvent, genkey: str) -> StreamEvent:
    if isinstance(event, Finished) and event.finish_reason == "error":
        logger.warning("stream %s: the backend reports a failed generation", genkey)
        raise GenerationFailed('KoboldCpp ended the reply with finish_reason "error"')
    return event


def _status_error(status: int, path: str, body: bytes) -> Exception:
    snippet = body[:200].decode("utf-8", "replace")
    logger.warning("%s answered HTTP %s: %s", path, status, snippet)
    if status == 503:
        return BackendBusy(status=status)
    if status == 401:
        return BackendAuthError(status=status)
    return BackendProtocolError(f"HTTP {status} from {path}: {snippet}", status=status)
