"""The chat socket: a thin protocol adapter. Frames in start, stop or resume reply jobs
(never run inside `receive`); the jobs' frames come back through the user's group."""

import asyncio
import logging
import weakref

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from agents import start_trace
from chat import protocol, services, tree
from chat.errors import ChatError
from chat.models import Message
from chat.protocol import ClientFrame
from chat.replies import control, drain
from chat.replies.fanout import user_group
from chat.replies.listener import SNAPSHOT_WAIT_SECONDS, ReplyListener
from chat.replies.reaper import ensure_reaper
from chat.socket import revocation, slots

log = logging.getLogger(__name__)

SERVICE_RESTART = 4503  # the process stops (like HTTP 503): the page reconnects at once
_open: "weakref.WeakSet[ChatConsumer]" = weakref.WeakSet()


async def close_all(code: int = SERVICE_RESTART) -> int:
    """Close every socket of this process (it stops); how many."""
    sockets = list(_open)
    for consumer in sockets:
        try:
            await consumer.close(code=code)
        except Exception:
            log.warning("a socket did not close cleanly", exc_info=True)
    return len(sockets)


def _pending_replies(user) -> list[Message]:
    return list(Message.objects.pending().filter(conversation__owner=user))


def _last_reply(user, conversation_id) -> Message | None:
    """The reply the conversation's shown branch ends with."""
    conversation = services.conversation_get(user=user, conversation_id=conversation_id)
    leaf = Message.objects.filter(pk=tree.leaf_id(conversation)).first()
    return leaf if leaf is not None and leaf.role == Message.Role.ASSISTANT else None


class ChatConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.user = self.scope["user"]
        self.group = user_group(self.user.pk)
        self.listener = ReplyListener(self.channel_name)
        self.tasks: set[asyncio.Task] = set()
        self.groups_joined: list[str] = []
        self.holds_slot = False
        if drain.closed():  # refused: the page tries again, soon elsewhere
            return await self.close()
        self.holds_slot = await slots.socket_slot_acquire(
            self.user.pk, self.channel_name
        )
        if not self.holds_slot:  # accepted first: a refused handshake has no code
            await self.accept()
            return await self.close(code=slots.CLOSE_CODE, reason="Too many sockets.")
        # The reply frames of the user, and the groups that close it on revocation.
        self.groups_joined = [self.group, *revocation.socket_groups(self.scope)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        _open.add(self)
        if not await revocation.credentials_valid(self.scope):
            return await self.close(code=revocation.CLOSE_CODE)  # ended meanwhile
        ensure_reaper()
        for message in await database_sync_to_async(_pending_replies)(self.user):
            await self._resume(message)

    async def disconnect(self, code):
        _open.discard(self)
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        if self.holds_slot:
            await slots.socket_slot_release(self.user.pk, self.channel_name)
        for task in self.tasks:
            task.cancel()

    # --- frames from the client ------------------------------------------------------
    async def receive(self, text_data=None, bytes_data=None):
        start_trace.begin()
        frame = None
        try:
            frame = protocol.parse_client_frame(
                text_data, max_bytes=settings.CHAT_MAX_FRAME_BYTES
            )
            start_trace.mark("parsed")
            await self.HANDLERS[frame.type](self, frame)
        except ChatError as exc:
            message_id = frame.message_id if frame is not None else None
            await self.send_json(protocol.error_from(exc, message_id))

    async def on_message(self, frame: ClientFrame):
        await control.reply_start(
            user=self.user,
            text=frame.fields.get("text"),
            conversation_id=frame.optional_integer("conversation_id"),
            new_conversation=frame.fields.get("new_conversation") is True,
        )

    async def on_edit(self, frame: ClientFrame):
        await control.reply_start(
            user=self.user,
            text=frame.fields.get("text"),
            edit_of=frame.integer("message_id"),
        )

    async def on_select(self, frame: ClientFrame):
        await control.branch_select(
            user=self.user, message_id=frame.integer("message_id")
        )

    async def on_stop(self, frame: ClientFrame):
        await control.reply_stop(user=self.user, message_id=frame.integer("message_id"))

    async def on_regenerate(self, frame: ClientFrame):
        await control.reply_regenerate(
            user=self.user,
            conversation_id=frame.integer("conversation_id"),
            message_id=frame.optional_integer("message_id"),
        )

    async def on_continue(self, frame: ClientFrame):
        await control.reply_continue(
            user=self.user,
            conversation_id=frame.integer("conversation_id"),
            message_id=frame.optional_integer("message_id"),
        )

    async def on_resume(self, frame: ClientFrame):
        conversation_id = frame.integer("conversation_id")
        reply = await database_sync_to_async(_last_reply)(self.user, conversation_id)
        if reply is None:
            return await self.send_json(
                protocol.snapshot(
                    conversation_id=conversation_id,
                    message_id=None,
                    status="",
                    content="",
                )
            )
        await self._resume(reply)

    async def on_ping(self, frame: ClientFrame):
        await self.send_json(protocol.pong())

    HANDLERS = {
        "message": on_message,
        "edit": on_edit,
        "stop": on_stop,
        "regenerate": on_regenerate,
        "continue": on_continue,
        "select": on_select,
        "resume": on_resume,
        "ping": on_ping,
    }

    # --- frames from reply jobs ------------------------------------------------------
    async def dispatch(self, message):
        # Token frames touch no database: skip Channels' close_old_connections() hop to
        # the sync thread, which queued every frame behind all database work.
        if message["type"] == "chat.frame":
            return await self.chat_frame(message)
        return await super().dispatch(message)

    async def chat_frame(self, event):
        await self._send_all(self.listener.on_event(event))

    async def chat_snapshot(self, event):
        await self._send_all(self.listener.on_event(event))

    async def socket_revoke(self, event):
        """The key, session or user that opened this socket has ended."""
        await self.close(code=revocation.CLOSE_CODE, reason="Credentials ended.")

    # --- helpers ---------------------------------------------------------------------
    async def _send_all(self, frames: list[dict]) -> None:
        for frame in frames:
            await self.send_json(frame)

    async def _resume(self, message: Message) -> None:
        """Snapshot of a reply, then only the live frames after it."""
        await self._send_all(await self.listener.resume(message))
        if self.listener.is_waiting(message.pk):
            task = asyncio.create_task(self._snapshot_fallback(message.pk))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _snapshot_fallback(self, message_id: int) -> None:
        await asyncio.sleep(SNAPSHOT_WAIT_SECONDS)
        await self._send_all(await self.listener.fallback(message_id))
