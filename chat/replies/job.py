"""One job per assistant reply: an asyncio task owned by the server process, not by any
socket. It waits its turn, streams through the orchestrator, fans frames out to the owner's
sockets, checkpoints about once a second, and answers `stop` and `snapshot` requests."""

import asyncio
import logging
import time
import uuid

from channels.db import database_sync_to_async

from agents.direct import direct_reply
from agents.errors import LLMError
from agents.events import (
    AnswerRetracted,
    Finished,
    IntentDecided,
    ReasoningDelta,
    TextDelta,
)
from agents.orchestrator import Orchestrator
from agents.request_body import new_genkey
from agents.start_trace import job_context
from chat import protocol, services
from chat.models import Message
from chat.pool.placement import Placement
from chat.rendering import render_markdown
from chat.replies.checkpoint import checkpoint_forever, store_token_counts_later
from chat.replies.continuation import generation_metrics, separator
from chat.replies.fanout import ReplyFanout, ReplyText
from chat.replies.queue import get_backend_queue
from chat.replies.request import ReplyRequest

log = logging.getLogger(__name__)

_jobs: dict[int, "GenerationJob"] = {}


def local_job(message_id: int) -> "GenerationJob | None":
    return _jobs.get(message_id)


def local_jobs() -> list["GenerationJob"]:
    """The jobs running in this process."""
    return list(_jobs.values())


class GenerationJob:
    def __init__(self, request: ReplyRequest):
        self.request = request
        self.message_id = request.message_id
        self.job_id = f"{request.message_id}-{uuid.uuid4().hex[:8]}"
        self.genkey = new_genkey()
        self.status = Message.Status.QUEUED
        # The one owner of the reply's text while it streams (continue: from the prefix).
        self.text = ReplyText(content=request.prefix, reasoning=request.reasoning)
        self.frames = ReplyFanout(
            message_id=request.message_id, conversation_id=request.conversation_id,
            user_id=request.user_id, text=self.text,
        )  # fmt: skip
        self.placement = Placement(self.job_id, request.conversation_id, request.model)
        self.intent: IntentDecided | None = None
        self.finished: Finished | None = None
        self.done = asyncio.Event()
        self._status_write: asyncio.Task | None = None
        self._stop_requested = False
        self._handing_over = False  # at shutdown: left pending for the next process
        self._joins = False  # the model's text carries on the prefix as it is
        self._upstream_started = False
        self._task: asyncio.Task | None = None
        self._work: asyncio.Task | None = None
        self._started_at = time.monotonic()
        self._first_token_at: float | None = None
        self._thinking: tuple[float, float] | None = None  # first and last reasoning

    # --- lifecycle -----------------------------------------------------------------
    def start(self) -> asyncio.Task:
        _jobs[self.message_id] = self
        # A fresh context: the job outlives the request or socket that started it, and
        # must not inherit a per-request ThreadSensitiveContext whose executor closes.
        self._task = asyncio.create_task(
            self._run(), name=f"reply-{self.message_id}", context=job_context()
        )
        return self._task

    async def _run(self) -> None:
        frames = self.frames
        control = asyncio.create_task(
            frames.serve_requests(on_stop=self.stop, snapshot=self.snapshot)
        )
        ticker = asyncio.create_task(
            checkpoint_forever(self.message_id, self.job_id, self.text)
        )
        sender = asyncio.create_task(frames.send_forever())
        queue = get_backend_queue()
        error: LLMError | None = None
        if self.request.announce:
            await frames.broadcast(dict(self.request.announce))
        try:
            self._work = asyncio.create_task(self._generate(queue))
            if self._stop_requested or self._handing_over:  # asked during the announce
                self._work.cancel()
            await self._work
        except asyncio.CancelledError:
            if not (self._stop_requested or self._handing_over):
                raise
        except LLMError as exc:
            error = exc
            log.warning(
                "reply %s failed: %s (%s, upstream status %s)",
                self.message_id, exc.code, exc, exc.status,
            )  # fmt: skip
        except Exception as exc:
            error = LLMError(f"Unexpected failure: {exc}")
            log.exception("reply %s crashed", self.message_id)
        finally:
            try:
                await asyncio.shield(frames.quietly(queue.release(self.job_id)))
                ticker.cancel()
                await frames.flush(sender)
                end = self._release() if self._handing_over else self._finish(error)
                await asyncio.shield(end)
            finally:  # also when cancelled again meanwhile (its event loop closes)
                control.cancel()
                _jobs.pop(self.message_id, None)
                self.done.set()

    async def _generate(self, queue) -> None:
        log.info("reply %s queued (job %s)", self.message_id, self.job_id)
        while True:  # each new place in the line is told as it changes
            service = await self.placement.acquire(
                queue, lambda place: self.frames.broadcast(protocol.queued(place))
            )
            try:
                await self._stream(service, queue)
            except LLMError as exc:
                started = self._first_token_at is not None
                if not await self.placement.moves_on(exc, started=started):
                    raise
            else:
                return await self.placement.succeeded()

    async def _stream(self, service, queue) -> None:
        self.status = Message.Status.STREAMING
        self._started_at = time.monotonic()  # metrics measure the model, not the queue
        # Others waiting for the backend: no generation is spent on classifying intent.
        contended = await queue.others_waiting()
        log.info(
            "reply %s generating on %s with genkey %s%s",
            self.message_id, service.base_url, self.genkey,
            " (others waiting)" if contended else "",
        )  # fmt: skip
        orchestrator, self._service, r = Orchestrator(service), service, self.request
        if r.direct is not None:
            events = direct_reply(service, r.direct, genkey=self.genkey)
        else:
            run = orchestrator.simple_reply if r.simple else orchestrator.reply
            # A hand-over: the model carries on from the text (mid-sentence, natively).
            more = {"prefix": r.prefix} if r.carry_on and not r.simple else {}
            self._joins = bool(more) and await service.resolve_api() == "native"
            events = run(
                r.history, r.text, overrides=r.overrides, genkey=self.genkey,
                contended=contended, **more,
            )  # fmt: skip
        self._upstream_started = True
        async for event in events:
            if isinstance(event, TextDelta):
                self._on_text(event.text)
            elif isinstance(event, ReasoningDelta):
                self._on_reasoning(event.text)
            elif isinstance(event, AnswerRetracted):
                self.text.content = self.request.prefix
                self.frames.rewind(len(self.request.prefix))
            elif isinstance(event, IntentDecided):
                await self._on_intent(event)
            elif isinstance(event, Finished):
                self.finished = event

    # --- events from the model -------------------------------------------------------
    async def _on_intent(self, decision: IntentDecided) -> None:
        again, self.intent = self.intent is not None, decision  # again: failed over
        # Stored beside the stream, not before it: the first token must not wait for
        # the database. `_finish` waits for this write before the final one.
        self._status_write = asyncio.create_task(
            database_sync_to_async(services.reply_update)(
                message_id=self.message_id,
                status=Message.Status.STREAMING,
                intent=decision.intent,
                intent_source=decision.source,
                genkey=self.genkey,
                **self.placement.fields(),
            )
        )
        frame = protocol.start(decision.intent, decision.source)
        if not again:  # the sockets heard of it on the first backend tried
            await self.frames.broadcast(frame)

    def _on_text(self, text: str) -> None:
        if not text:
            return
        self._first_token_at = self._first_token_at or time.monotonic()
        if self.text.content == self.request.prefix and not self._joins:  # continued
            text = separator(self.request.prefix, text) + text
        self.text.content += text
        self.frames.notify()

    def _on_reasoning(self, text: str) -> None:
        if not text:
            return
        now = time.monotonic()
        self._first_token_at = self._first_token_at or now
        started = self._thinking[0] if self._thinking else now
        self._thinking = (started, now)
        self.text.reasoning += text
        self.frames.notify()

    def snapshot(self) -> dict:
        return self.frames.snapshot(self.status, self.intent)

    # --- control ---------------------------------------------------------------------
    async def stop(self) -> None:
        if self._stop_requested or self.done.is_set():
            return
        log.info("reply %s: stop requested", self.message_id)
        self._stop_requested = True
        if self._work is not None:
            self._work.cancel()

    async def hand_over(self) -> None:
        """Give the reply up (its process stops): the model is stopped, the text kept,
        and the reply left pending for the next process to continue (chat.replies.drain)."""
        if not self.done.is_set():
            self._handing_over = True
            if self._work is not None:
                self._work.cancel()
            await self.done.wait()

    # --- the end ---------------------------------------------------------------------
    async def _abort_upstream(self) -> None:
        if self._status_write is not None:
            await asyncio.gather(self._status_write, return_exceptions=True)
        if self._upstream_started:
            try:
                await asyncio.wait_for(self._service.abort(self.genkey), timeout=2.0)
            except Exception:
                log.exception("reply %s: abort %s failed", self.message_id, self.genkey)

    async def _release(self) -> None:
        await self._abort_upstream()
        text, pk = self.text, self.message_id
        await database_sync_to_async(services.reply_release)(
            message_ids=[pk], content=text.content, reasoning=text.reasoning
        )
        log.warning("reply %s handed over at %s chars", pk, len(text.content))

    async def _finish(self, error: LLMError | None) -> None:
        if self._stop_requested:
            await self._abort_upstream()
        elif self._status_write is not None:
            await asyncio.gather(self._status_write, return_exceptions=True)
        if error is not None:
            status, reason = Message.Status.ERROR, ""
        elif self._stop_requested:
            status, reason = Message.Status.STOPPED, "stopped"
        else:
            status = Message.Status.COMPLETE
            reason = self.finished.finish_reason if self.finished else ""
        self.status = status
        metrics, usage = generation_metrics(
            started_at=self._started_at, first_token_at=self._first_token_at,
            thinking=self._thinking, finished=self.finished,
            earlier=self.request.earlier_metrics,
        )  # fmt: skip
        fields = {
            "status": status,
            "content": self.text.content,
            "reasoning": self.text.reasoning,
            "html": render_markdown(self.text.content),
            "finish_reason": reason,
            "error_code": error.code if error else "",
            **metrics,
            **self.placement.fields(),
        }
        await database_sync_to_async(services.reply_update)(
            message_id=self.message_id, generation_tokens=usage, **fields
        )
        message = await database_sync_to_async(Message.objects.get)(pk=self.message_id)
        if error is not None:
            await self.frames.broadcast(protocol.error(error.code, detail=str(error)))
        await self.frames.broadcast(protocol.end_from_message(message))
        if self._upstream_started and not error:
            texts = {self.message_id: self.text.content}
            if self.request.user_message_id is not None:
                texts[self.request.user_message_id] = self.request.text
            store_token_counts_later(self._service, texts)
        log.info(
            "reply %s ended %s (%s chars, reason %r)",
            self.message_id, status, len(self.text.content), reason,
        )  # fmt: skip
