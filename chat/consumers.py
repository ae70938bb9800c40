"""The chat socket: a thin protocol adapter. Frames in start, stop or resume reply jobs
(never run inside `receive`); the jobs' frames come back through the user's group."""

import asyncio
import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from chat import generation, services
from chat.errors import ChatError
from chat.frames import FrameFilter
from chat.models import Message
from chat.reply_fanout import user_group

log = logging.getLogger(__name__)


def _pending_replies(user) -> list[Message]:
    return list(Message.objects.pending().filter(conversation__owner=user))


def _last_reply(user, conversation_id) -> Message | None:
    conversation = services.conversation_get(user=user, conversation_id=conversation_id)
    return conversation.messages.filter(role=Message.Role.ASSISTANT).last()


class ChatConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.user = self.scope["user"]
        self.group = user_group(self.user.pk)
        self.frames = FrameFilter()
        self.tasks: set[asyncio.Task] = set()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        generation.ensure_reaper()
        for message in await database_sync_to_async(_pending_replies)(self.user):
            await self._resume(message)

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)
        for task in self.tasks:
            task.cancel()

    # --- frames from the client ------------------------------------------------------
    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            return await self._error(
                "bad_request", "Send text frames, not binary ones."
            )
        if len(text_data.encode()) > settings.CHAT_MAX_FRAME_BYTES:
            limit = settings.CHAT_MAX_FRAME_BYTES // 1024
            return await self._error(
                "bad_request", f"Frames are limited to {limit} KiB."
            )
        if text_data.lstrip()[:1] not in ("{", "["):
            content = {"type": "message", "text": text_data}
        else:
            try:
                content = json.loads(text_data)
            except ValueError:
                return await self._error("bad_request", "This frame is not valid JSON.")
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            return await self._error(
                "bad_request", "A JSON frame must be an object with a type."
            )
        handler = self.HANDLERS.get(content["type"])
        if handler is None:
            return await self._error(
                "bad_request", f"Unknown frame type {content['type']!r}."
            )
        try:
            await handler(self, content)
        except ChatError as exc:
            message_id = content.get("message_id")
            await self.send_json(
                exc.as_frame(message_id if isinstance(message_id, int) else None)
            )

    async def on_message(self, content):
        text = content.get("text")
        conversation_id = content.get("conversation_id")
        if conversation_id is not None:
            conversation_id = self._int(content, "conversation_id")
        await generation.reply_start(
            user=self.user, text=text, conversation_id=conversation_id
        )

    async def on_stop(self, content):
        await generation.reply_stop(
            user=self.user, message_id=self._int(content, "message_id")
        )

    async def on_regenerate(self, content):
        await generation.reply_regenerate(
            user=self.user, conversation_id=self._int(content, "conversation_id")
        )

    async def on_continue(self, content):
        await generation.reply_continue(
            user=self.user, conversation_id=self._int(content, "conversation_id")
        )

    async def on_resume(self, content):
        conversation_id = self._int(content, "conversation_id")
        reply = await database_sync_to_async(_last_reply)(self.user, conversation_id)
        if reply is None:
            return await self.send_json(
                {"type": "snapshot", "conversation_id": conversation_id, "message_id": None,
                 "status": "", "content": "", "offset": 0}
            )  # fmt: skip
        await self._resume(reply)

    async def on_ping(self, content):
        await self.send_json({"type": "pong"})

    HANDLERS = {
        "message": on_message,
        "stop": on_stop,
        "regenerate": on_regenerate,
        "continue": on_continue,
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
        for frame in self.frames.on_frame(event["frame"]):
            await self.send_json(frame)

    async def chat_snapshot(self, event):
        if self.frames.is_waiting(event["frame"]["message_id"]):
            for frame in self.frames.on_snapshot(event["frame"]):
                await self.send_json(frame)

    # --- helpers ---------------------------------------------------------------------
    async def _resume(self, message: Message) -> None:
        """Snapshot of a reply, then only the live frames after it."""
        if not message.is_pending:
            return await self.send_json(generation.snapshot_from_database(message))
        self.frames.expect_snapshot(message.pk)
        snapshot = await generation.snapshot_request(message.pk, self.channel_name)
        if snapshot is not None:
            return await self.chat_snapshot({"frame": snapshot})
        task = asyncio.create_task(self._snapshot_fallback(message.pk))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _snapshot_fallback(self, message_id: int) -> None:
        """No job answered: it died with its process; the checkpoint is what there is."""
        await asyncio.sleep(generation.SNAPSHOT_WAIT_SECONDS)
        if self.frames.is_waiting(message_id):
            message = await database_sync_to_async(Message.objects.get)(pk=message_id)
            await self.chat_snapshot(
                {"frame": generation.snapshot_from_database(message)}
            )

    async def _error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    @staticmethod
    def _int(content: dict, name: str) -> int:
        value = content.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ChatError("bad_request", f"{name} must be an integer.")
        return value
