"""The one resume mechanism, for every listener of replies (a socket, a REST stream): a
snapshot of a reply from its job (in this process or another) or, when no job answers,
from the database; then only the live frames past the snapshot's offset, so every
character arrives once, with no gap."""

import asyncio
import logging
from collections.abc import AsyncIterator

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chat import protocol
from chat.models import Message
from chat.replies.fanout import reply_group, user_group
from chat.replies.job import local_job

log = logging.getLogger(__name__)

SNAPSHOT_WAIT_SECONDS = 2.0


class FrameFilter:
    """What one client already has of each reply (answer and reasoning apart), and the
    frames held back until a reply's snapshot arrives."""

    STREAMS = {"token": "offset", "reasoning": "reasoning_offset"}

    def __init__(self):
        # (message id, frame type) -> characters of that stream the client has
        self._delivered: dict[tuple[int, str], int] = {}
        self._waiting: dict[int, list[dict]] = {}  # message id -> frames held back

    def expect_snapshot(self, message_id: int) -> None:
        """Hold this reply's frames back until its snapshot arrives."""
        self._waiting.setdefault(message_id, [])

    def is_waiting(self, message_id: int) -> bool:
        return message_id in self._waiting

    def on_snapshot(self, snapshot: dict) -> list[dict]:
        """The snapshot, then the held-back frames that go past it."""
        message_id = snapshot["message_id"]
        for kind, field in self.STREAMS.items():
            self._delivered[(message_id, kind)] = snapshot.get(field, 0)
        out = [snapshot]
        for frame in self._waiting.pop(message_id, []):
            out.extend(self.on_frame(frame))
        return out

    def on_frame(self, frame: dict) -> list[dict]:
        """The part of `frame` this client does not have yet (maybe nothing)."""
        message_id = frame.get("message_id")
        if message_id in self._waiting:
            self._waiting[message_id].append(frame)
            return []
        kind = frame.get("type")
        if kind == "end":
            for stream in self.STREAMS:
                self._delivered.pop((message_id, stream), None)
        if kind == "rewind":
            key = (message_id, "token")
            self._delivered[key] = min(self._delivered.get(key, 0), frame["offset"])
        if kind not in self.STREAMS:
            return [frame]
        key = (message_id, kind)
        offset, text = frame["offset"], frame["text"]
        have = self._delivered.get(key, offset)
        end = offset + len(text)
        if end <= have:
            return []
        self._delivered[key] = end
        if offset < have:
            return [{**frame, "offset": have, "text": text[have - offset :]}]
        return [frame]


class ReplyListener:
    """What one listener (reading channel `reply_to`) needs to resume replies."""

    def __init__(self, reply_to: str):
        self.reply_to = reply_to
        self.frames = FrameFilter()

    def is_waiting(self, message_id: int) -> bool:
        return self.frames.is_waiting(message_id)

    async def resume(self, message: Message) -> list[dict]:
        """The frames to send now for `message`. When its job lives in another process,
        nothing yet: its snapshot comes as an event (`on_event`), or call `fallback`
        after SNAPSHOT_WAIT_SECONDS if none came (the job died with its process)."""
        if not message.is_pending:
            return [protocol.snapshot_from_message(message)]
        self.frames.expect_snapshot(message.pk)
        job = local_job(message.pk)
        if job is not None:
            return self.frames.on_snapshot(job.snapshot())
        await get_channel_layer().group_send(
            reply_group(message.pk), {"type": "job.snapshot", "reply_to": self.reply_to}
        )
        return []

    async def fallback(self, message_id: int) -> list[dict]:
        """No job answered: the last checkpoint in the database is what there is."""
        if not self.frames.is_waiting(message_id):
            return []
        message = await database_sync_to_async(Message.objects.get)(pk=message_id)
        log.info("reply %s: no job answered; resuming from the database", message_id)
        return self.frames.on_snapshot(protocol.snapshot_from_message(message))

    def on_event(self, event: dict) -> list[dict]:
        """The frames of a channel-layer event (`chat.frame` or `chat.snapshot`) this
        listener does not have yet."""
        frame = event.get("frame", {})
        if event.get("type") == "chat.snapshot":
            if self.frames.is_waiting(frame.get("message_id")):
                return self.frames.on_snapshot(frame)
            return []
        return self.frames.on_frame(frame)


async def reply_frames(
    conversation_id: int, message_id: int, *, message: Message | None = None
) -> AsyncIterator[dict]:
    """The frames of one reply for one reader (the REST stream): a snapshot of what was
    already sent, then the live frames after it, ending with `end`. `message`: its row
    as the caller has just written it (with its conversation), used while its job runs
    here (the job has the rest), else read again."""
    if message is None or local_job(message_id) is None:
        message = await database_sync_to_async(
            Message.objects.select_related("conversation").get
        )(pk=message_id, conversation_id=conversation_id)
    if not message.is_pending:
        yield protocol.end_from_message(message)
        return
    async with GroupListener(user_group(message.conversation.owner_id)) as group:
        listener = ReplyListener(group.channel)
        pending = await listener.resume(message)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SNAPSHOT_WAIT_SECONDS
        while True:
            for frame in pending:
                if frame.get("message_id") != message_id:
                    continue
                yield frame
                if frame["type"] == "end":
                    return
                if frame["type"] == "snapshot" and frame["status"] not in (
                    Message.PENDING_STATUSES
                ):
                    settled = await database_sync_to_async(Message.objects.get)(
                        pk=message_id
                    )
                    yield protocol.end_from_message(settled)
                    return
            if listener.is_waiting(message_id):
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await group.get()
                except TimeoutError:
                    pending = await listener.fallback(message_id)
                    continue
            else:
                event = await group.get()
            pending = listener.on_event(event)


class GroupListener:
    """A channel of this process in a group, read by one task into a local queue: waiting
    on it with a timeout never cancels a channel-layer `receive()` (the pub/sub layer
    unsubscribes a channel whose receive was cancelled, dropping what comes meanwhile)."""

    def __init__(self, group: str):
        self.group = group
        self.layer = get_channel_layer()
        self.channel = ""
        self._queue: asyncio.Queue[dict] = asyncio.Queue()
        self._reader: asyncio.Task | None = None

    async def __aenter__(self) -> "GroupListener":
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info) -> None:
        self._reader.cancel()
        await asyncio.shield(self.layer.group_discard(self.group, self.channel))

    async def get(self) -> dict:
        return await self._queue.get()

    async def _read(self) -> None:
        while True:
            try:
                self._queue.put_nowait(await self.layer.receive(self.channel))
            except Exception:
                log.warning("listener of %s: receive failed", self.group, exc_info=True)
                await asyncio.sleep(0.5)
