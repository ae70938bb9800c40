"""The streamed answer: the reply's frames (chat.replies.listener, the one resume
mechanism) as OpenAI chunks, `: keep-alive` comments while the request waits in the
queue, `data: [DONE]` at the end; a caller that leaves first, or whose key is revoked,
stops the reply."""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable

from django.conf import settings

from chat.gateway.answers import Answer, finish_reason
from chat.gateway.errors import error_body
from chat.gateway.replies import api_reply_abandon, api_reply_done
from chat.models import ApiKey, Message
from chat.replies.listener import GroupListener, reply_frames
from chat.socket.revocation import REVOKE_EVENT, key_group

KEEPALIVE = ": keep-alive\n\n"
DONE = "data: [DONE]\n\n"
_END = object()
REVOKED = {"type": "revoked"}  # the key was revoked mid-stream


def sse(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def key_revoked(key_id: int) -> None:
    """Return when the key is revoked (chat.socket.revocation tells its group)."""
    async with GroupListener(key_group(key_id)) as group:
        while (await group.get()).get("type") != REVOKE_EVENT["type"]:
            pass


async def with_keepalive(
    frames: AsyncIterator[dict], seconds: float, *, until: Awaitable[None]
) -> AsyncIterator[dict | None]:
    """The frames, with None after each `seconds` without one, and a REVOKED frame
    (the end) once `until` is done. The frames are read by a task of their own: a
    timeout never cancels the listener's read."""
    queue: asyncio.Queue = asyncio.Queue()

    async def pump() -> None:
        try:
            async for frame in frames:
                queue.put_nowait(frame)
        finally:
            queue.put_nowait(_END)

    async def watch() -> None:
        await until
        queue.put_nowait(REVOKED)

    reader, watcher = asyncio.create_task(pump()), asyncio.create_task(watch())
    try:
        while True:
            try:
                async with asyncio.timeout(seconds):
                    item = await queue.get()
            except TimeoutError:
                yield None
                continue
            if item is _END:
                await reader  # raises what ended the frames early
                return
            yield item
    finally:
        reader.cancel()
        watcher.cancel()


class ChunkWriter:
    """The frames of one reply as chunks: what each adds past the text already sent (a
    snapshot and the `end` carry the whole text so far)."""

    def __init__(self, answer: Answer, include_usage: bool):
        self.answer = answer
        self.include_usage = include_usage
        self.content_sent = 0
        self.reasoning_sent = 0

    def _text(self, content="", reasoning="", *, at=0, reasoning_at=0) -> list[str]:
        """The chunk of what `content` (starting at offset `at`) and `reasoning` add."""
        content = content[max(0, self.content_sent - at) :]
        reasoning = reasoning[max(0, self.reasoning_sent - reasoning_at) :]
        reasoning = reasoning if self.answer.chat else ""
        self.content_sent += len(content)
        self.reasoning_sent += len(reasoning)
        if not (content or reasoning):
            return []
        return [sse(self.answer.chunk(content=content, reasoning=reasoning))]

    def on_frame(self, frame: dict) -> list[str]:
        kind = frame["type"]
        if kind == "token":
            return self._text(frame["text"], at=frame["offset"])
        if kind == "reasoning":
            return self._text(reasoning=frame["text"], reasoning_at=frame["offset"])
        if kind == "snapshot":
            return self._text(frame.get("content", ""), frame.get("reasoning", ""))
        if kind == "queued":
            return [KEEPALIVE]
        if kind == "revoked":
            return [sse(error_body("unauthorized", "The API key was revoked.")), DONE]
        return []

    def on_end(self, end: dict) -> list[str]:
        if end["status"] in ("error", "interrupted"):
            code = end.get("error_code") or "backend_error"
            return [sse(error_body(code)), DONE]
        out = self._text(end.get("content", ""), end.get("reasoning", ""))
        out.append(sse(self.answer.chunk(reason=finish_reason(end))))
        if self.include_usage:
            out.append(sse(self.answer.usage_chunk(end.get("metrics") or {})))
        return [*out, DONE]


async def answer_stream(
    *,
    key: ApiKey,
    answer: Answer,
    conversation_id: int,
    include_usage: bool = False,
    message: Message | None = None,
) -> AsyncIterator[str]:
    """The SSE body of one streamed request, until [DONE] (`message`: the reply's row
    as just written, so that the stream starts without reading it again)."""
    ended = False
    writer = ChunkWriter(answer, include_usage)
    if answer.chat:
        yield sse(answer.chunk(role=True))
    frames = with_keepalive(
        reply_frames(conversation_id, answer.message_id, message=message),
        settings.GATEWAY_KEEPALIVE_SECONDS,
        until=key_revoked(key.pk),
    )
    try:
        async for frame in frames:
            if frame is None:
                yield KEEPALIVE
            elif frame is REVOKED:
                for chunk in writer.on_frame(frame):
                    yield chunk
                return
            elif frame["type"] == "end":
                ended = True
                for chunk in writer.on_end(frame):
                    yield chunk
                return
            else:
                for chunk in writer.on_frame(frame):
                    yield chunk
    finally:
        if not ended:
            await api_reply_abandon(key=key, message_id=answer.message_id)
        api_reply_done(
            key=key, conversation_id=conversation_id, message_id=answer.message_id
        )
