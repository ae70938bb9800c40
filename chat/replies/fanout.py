"""How a reply job talks to the world through the channel layer: token frames to every
socket of the user (coalesced, with offsets), and `stop`/`snapshot` requests from any
process. Channel-layer failures are logged, never fatal to the reply."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from channels.layers import get_channel_layer

from agents import start_trace
from chat import protocol

log = logging.getLogger(__name__)


def user_group(user_id: int) -> str:
    """Every socket (and REST stream) of a user listens here."""
    return f"user.{user_id}"


def reply_group(message_id: int) -> str:
    """The job of a reply listens here for `stop` and `snapshot` requests."""
    return f"reply.{message_id}"


@dataclass
class ReplyText:
    """The reply's text while it streams: owned by the job, read by the fan-out."""

    content: str = ""
    reasoning: str = ""


class ReplyFanout:
    """Sends what the job's `ReplyText` holds past what was already sent: the reasoning,
    then the answer, each with offsets of its own."""

    def __init__(
        self, *, message_id: int, conversation_id: int, user_id: int, text: ReplyText
    ):
        self.message_id = message_id
        self.conversation_id = conversation_id
        self.user_id = user_id
        self.text = text
        self.sent = len(text.content)  # characters already sent in token frames
        self.reasoning_sent = len(text.reasoning)
        self.layer = get_channel_layer()
        self._wake = asyncio.Event()
        self._closing = False
        self._rewind: int | None = None

    async def quietly(self, operation: Awaitable) -> bool:
        """Run a channel-layer or queue operation; a failure is logged, never fatal: the
        reply goes on and is stored, and clients resume from the job or the database."""
        try:
            await operation
            return True
        except Exception:
            log.warning(
                "reply %s: channel layer failed", self.message_id, exc_info=True
            )
            return False

    async def broadcast(self, frame: dict) -> None:
        frame.setdefault("conversation_id", self.conversation_id)
        frame.setdefault("message_id", self.message_id)
        await self.quietly(
            self.layer.group_send(
                user_group(self.user_id), {"type": "chat.frame", "frame": frame}
            )
        )
        start_trace.mark(frame["type"])  # the first of each type (off: nothing)

    # --- token frames ----------------------------------------------------------------
    def notify(self) -> None:
        """The job's text grew: send the new part as soon as possible."""
        self._wake.set()

    def rewind(self, offset: int) -> None:
        """The job's answer was cut back to `offset`: tell every client, in order with
        the token frames (the sender sends it before anything newer)."""
        self._rewind = offset
        self._wake.set()

    def snapshot(self, status: str, intent) -> dict:
        """The text already sent in frames (`intent`: an IntentDecided or None): live
        frames continue from its end."""
        return protocol.snapshot(
            conversation_id=self.conversation_id,
            message_id=self.message_id,
            status=status,
            content=self.text.content[: self.sent],
            reasoning=self.text.reasoning[: self.reasoning_sent],
            intent=intent.intent if intent else "",
            intent_source=intent.source if intent else "",
        )

    async def send_forever(self) -> None:
        """Send pending text as soon as possible; what arrives meanwhile joins the next
        frame, so a fast model gives fewer, larger frames and never later ones."""
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            await self._send_pending()

    async def _send_pending(self) -> None:
        if self._rewind is not None:
            offset, self._rewind = self._rewind, None
            if offset < self.sent:
                self.sent = offset
                await self.broadcast(protocol.rewind(offset))
        reasoning = self.text.reasoning[self.reasoning_sent :]
        if reasoning:
            offset, self.reasoning_sent = self.reasoning_sent, len(self.text.reasoning)
            await self.broadcast(protocol.reasoning(offset, reasoning))
        content = self.text.content[self.sent :]
        if content:
            offset, self.sent = self.sent, len(self.text.content)
            await self.broadcast(protocol.token(offset, content))

    async def flush(self, sender: asyncio.Task) -> None:
        """Let the sender finish the frame it is sending and what is pending, then end."""
        self._closing = True
        self._wake.set()
        try:
            await sender
        except Exception:
            log.exception("reply %s: sending frames failed", self.message_id)
        await self._send_pending()

    # --- requests from any process ---------------------------------------------------
    async def serve_requests(
        self, *, on_stop: Callable[[], Awaitable[None]], snapshot: Callable[[], dict]
    ) -> None:
        channel = await self.layer.new_channel()
        group = reply_group(self.message_id)
        await self.quietly(self.layer.group_add(group, channel))
        try:
            while True:
                try:
                    message = await self.layer.receive(channel)
                except Exception:  # the layer (Redis) went away: rejoin when it is back
                    log.warning("reply %s: control channel lost", self.message_id)
                    await asyncio.sleep(0.5)
                    await self.quietly(self.layer.group_add(group, channel))
                    continue
                if message.get("type") == "job.stop":
                    await on_stop()
                elif message.get("type") == "job.snapshot" and message.get("reply_to"):
                    reply = {"type": "chat.snapshot", "frame": snapshot()}
                    await self.quietly(self.layer.send(message["reply_to"], reply))
        finally:
            await asyncio.shield(self.quietly(self.layer.group_discard(group, channel)))
