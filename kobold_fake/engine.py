"""The fake KoboldCpp's generation engine: scripts, the generation lock (one slot, or
several in multi-slot mode, with KoboldCpp's queue of waiters), abort by genkey, and the
token loop with its scripted delays and faults (kobold_fake/script.py says what a script
holds). `FakeKobold` (kobold_fake/server.py) adds the HTTP server and routing around it."""

from __future__ import annotations

import asyncio

from kobold_fake.grammar import constrained
from kobold_fake.payloads import SseFormat, result_body
from kobold_fake.script import (
    HTTP_FAULTS,
    Generation,
    Limits,
    Outcome,
    Script,
    cut_at_stop,
    generation_limits,
    valid_messages,
)
from kobold_fake.wire import (
    BAD_INPUT_BODY,
    BUSY_BODY,
    MALFORMED_LINE,
    NOT_FOUND_TEXT,
    UNAUTHORIZED_BODY,
    BodyWriter,
    Connection,
    Request,
    dumps,
    kobold_head,
    llamacpp_head,
    prompt_text,
    token_ids,
)


class GenerationEngine:
    """Mixed into FakeKobold: what happens to a POST that takes the generation lock."""

    async def _abort(self, conn: Connection, req: Request) -> bool:
        if not self._authorized(req):
            return await self._respond(conn, 401, dumps(UNAUTHORIZED_BODY))
        body = req.json()
        key = body.get("genkey", "") if isinstance(body, dict) else ""
        key = key if isinstance(key, str) else ""
        self.aborts.append(key or None)
        last_key = self._last.genkey if self._last else ""
        if (
            (not key and not self.queue)
            or (key and key == last_key)
            or any(key and g.genkey == key for g in self._running)
        ):
            for gen in self._running:
                if not key or gen.genkey == key:
                    gen.aborted = True
                    gen.wake()
            answer = {"success": "true", "done": "true"}
        elif key and self.queue:
            self._pending_abort = key  # one slot: the queued request ends at once
            answer = {"success": "true", "done": "false"}
        else:
            answer = {"success": "false", "done": "false"}
        if self.abort_delay:
            await asyncio.sleep(self.abort_delay)
        return await self._respond(conn, 200, dumps(answer))

    # -- the generation lock -------------------------------------------------------

    async def _acquire(self) -> bool:
        if self._free > 0:
            self._free -= 1
            return True
        limit = self.multiuser - 1 if self.multiuser > 1 else 6
        if not self.multiuser or len(self._waiters) >= limit:
            return False
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot was handed over just as we were cancelled
            else:
                self._waiters.remove(waiter)
            raise
        return True

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)  # hand the slot straight to a waiter
                return
        self._free += 1

    async def _locked_post(
        self, conn: Connection, req: Request, api: str | None
    ) -> bool:
        # Like KoboldCpp, the lock comes before routing, auth and body parsing.
        if not await self._acquire():
            return await self._respond(conn, 503, dumps(BUSY_BODY))
        try:
            if api is None:
                return await self._respond(conn, 404, NOT_FOUND_TEXT, "text/html")
            if not self._authorized(req):
                return await self._respond(conn, 401, dumps(UNAUTHORIZED_BODY))
            body = req.json()
            if not isinstance(body, dict):
                return await self._respond(conn, 500, dumps(BAD_INPUT_BODY))
            if api == "chat" and not valid_messages(body):
                return False  # 1.76 drops the connection without any answer
            self.generations.append(body)
            script = constrained(self._next_script(body), body.get("grammar"))
            if script.fault == "refuse":
                return False
            if script.fault in HTTP_FAULTS:
                status, payload = HTTP_FAULTS[script.fault]
                return await self._respond(conn, status, dumps(payload))
            return await self._generate(conn, api, body, script)
        finally:
            self._release()

    # -- generations ---------------------------------------------------------------

    async def _generate(self, conn: Connection, api: str, body: dict, script: Script):
        stream = api == "native_stream" or body.get("stream") is True
        genkey = body.get("genkey") if isinstance(body.get("genkey"), str) else ""
        gen = Generation(genkey, stream)
        if genkey and genkey == self._pending_abort:
            self._pending_abort = ""
            gen.aborted = True
        self._last = gen
        self._running.append(gen)
        self.active_generations += 1
        self.max_concurrent_generations = max(
            self.max_concurrent_generations, self.active_generations
        )
        watcher = asyncio.create_task(self._watch(conn, gen))
        outcome = Outcome(genkey, "", None, "fault")
        try:
            limits = generation_limits(api, body, self.style)
            tokens = self._tokens(gen, script, limits, skip=gen.aborted)
            if stream:
                fmt = SseFormat(
                    "native" if api == "native_stream" else api,
                    self.style,
                    self.model,
                    reasoning=script.reasoning_content,
                )
                return await self._stream(conn, fmt, gen, tokens, outcome)
            return await self._complete(conn, api, body, gen, tokens, outcome)
        finally:
            watcher.cancel()
            # The watcher must be gone before anyone reads the next request.
            await asyncio.wait([watcher])
            self.active_generations -= 1
            self._running.remove(gen)
            outcome.text = gen.text
            if gen.stream and gen.client_gone and outcome.finish_reason is None:
                outcome.ended_by = "disconnect"
                self.disconnects.append(genkey)
            elif gen.aborted:
                outcome.ended_by = "abort"
            elif gen.stop_hit:
                outcome.ended_by = "stop_sequence"
            self.outcomes.append(outcome)

    async def _watch(self, conn: Connection, gen: Generation) -> None:
        await conn.watch_eof()
        gen.client_gone = True
        if gen.stream or gen.waiting_forever:
            gen.wake()

    async def _pause(self, gen: Generation, seconds: float | None) -> None:
        """Sleep (None: until woken) unless the generation was stopped; abort wakes it."""
        if (seconds is not None and seconds <= 0) or gen.stopped:
            return
        if seconds is None and gen.client_gone:
            return
        loop = asyncio.get_running_loop()
        gen.waiter = loop.create_future()
        gen.waiting_forever = seconds is None
        timer = loop.call_later(seconds, gen.wake) if seconds is not None else None
        try:
            await gen.waiter
        finally:
            gen.waiter, gen.waiting_forever = None, False
            if timer is not None:
                timer.cancel()

    async def _tokens(
        self, gen: Generation, script: Script, limits: Limits, skip: bool
    ):
        """Yield ("token", text), ("raw", bytes), ("drop",) and a last ("final", text, why)."""
        if skip:  # a pending abort hit this request: it ends at once, empty
            yield ("final", "", "length")
            return
        if gen.stream:
            await self._pause(gen, self.start_delay)
        if script.fault == "stall_before_first":
            await self._pause(gen, None)
            yield ("final", "", "length")
            return
        await self._pause(gen, script.first_token_delay)
        tokens = script.tokens[: limits.max_length]
        cut = len(script.tokens) > limits.max_length
        stop_hit_reason = "stop" if self.style == "llamacpp" else "length"
        for index, token in enumerate(tokens):
            if index:
                await self._pause(gen, script.delay)
            if index == script.fault_at and script.fault == "drop_mid":
                yield ("drop",)
                return
            if index == script.fault_at and script.fault == "fail":
                yield ("final", "", "error")
                return
            if index == script.fault_at and script.fault == "malformed":
                yield ("raw", MALFORMED_LINE)
            if index == script.fault_at and script.fault == "stall_mid":
                await self._pause(gen, None)  # an abort then ends on this token
            if gen.stream and gen.client_gone:
                return
            text, gen.stop_hit = cut_at_stop(gen.text, token, limits)
            gen.text += text
            if gen.aborted or gen.stop_hit or index == len(tokens) - 1:
                reason = stop_hit_reason if gen.stop_hit else script.finish_reason
                yield ("final", text, "length" if gen.aborted or cut else reason)
                return
            yield ("token", text)
        yield ("final", "", "length" if cut else script.finish_reason)

    async def _stream(
        self, conn, fmt: SseFormat, gen, tokens, outcome: Outcome
    ) -> bool:
        if self.style == "llamacpp":
            head = llamacpp_head(200, length=None, stream=True, ms=5)
        else:
            head = kobold_head(
                200,
                http11=self.keep_alive,
                content_type="text/event-stream",
                stream=True,
                accel=self.style != "1.76",
            )
        out = BodyWriter(conn.writer, chunked=self.persistent)
        try:
            await out.raw(head)
            await out.send(fmt.start())
            async for item in tokens:
                if item[0] == "drop" or gen.client_gone:
                    return False
                if item[0] == "raw":
                    await out.send(item[1])
                elif item[0] == "token":
                    await out.send(fmt.token(item[1]))
                else:
                    await out.send(fmt.final(item[1], item[2]) + fmt.end())
                    await out.finish()
                    outcome.finish_reason, outcome.ended_by = item[2], "done"
        except ConnectionError:
            gen.client_gone = True
            return False
        return conn.keep and outcome.finish_reason is not None

    async def _complete(self, conn, api, body, gen, tokens, outcome: Outcome) -> bool:
        malformed, count = False, 0
        async for item in tokens:
            if item[0] == "drop":
                return False
            malformed = malformed or item[0] == "raw"
            count += item[0] in ("token", "final") and bool(item[1])
            if item[0] == "final":
                outcome.finish_reason, outcome.ended_by = item[2], "done"
        usage = (len(token_ids(prompt_text(body))), count)
        payload = result_body(
            api.removeprefix("native_"),
            self.style,
            self.model,
            gen.text,
            outcome.finish_reason or "length",
            usage,
        )
        return await self._respond(conn, 200, b"{not json" if malformed else payload)
