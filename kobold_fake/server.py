"""A fake KoboldCpp: a real HTTP server on 127.0.0.1 in its own thread and event loop.

Speaks the wire format of kobold_fake/wire.py; scripts say what each generation does
(kobold_fake/engine.py runs them).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable

from kobold_fake.engine import GenerationEngine
from kobold_fake.script import Generation, Outcome, Recorded, Script
from kobold_fake.wire import (
    LLAMACPP_MODEL,
    NOT_FOUND_TEXT,
    UNAUTHORIZED_BODY,
    BodyWriter,
    Connection,
    Request,
    dumps,
    kobold_head,
    llamacpp_head,
    token_ids,
)

DEFAULT_MODEL = "koboldcpp/SmolLM2-135M-Instruct.Q4_1"
_GENERATION_ROUTES = (  # suffix -> api, matched with endswith like KoboldCpp
    ("/api/extra/generate/stream", "native_stream"),
    ("/api/v1/generate", "native"),
    ("/api/latest/generate", "native"),
    ("/v1/chat/completions", "chat"),
    ("/v1/completions", "text"),
    ("/v1/completion", "text"),
)


class FakeKobold(GenerationEngine):
    """The fake server. Public lists and counters are written by the server thread."""

    def __init__(
        self,
        *,
        version: str = "1.76",
        flavor: str = "koboldcpp",
        keep_alive: bool = False,
        password: str | None = None,
        multiuser: int = 1,
        slots: int = 1,
        model: str = DEFAULT_MODEL,
        max_context: int = 2048,
        start_delay: float = 0.0,
        hang: bool = False,
        abort_delay: float = 0.0,
        port: int = 0,
    ):
        self.version, self.flavor, self.password = version, flavor, password
        self.keep_alive = keep_alive
        self.multiuser, self.slots, self.max_context = multiuser, slots, max_context
        self.start_delay, self.hang, self.abort_delay = start_delay, hang, abort_delay
        llama = flavor == "llamacpp"
        self.model = LLAMACPP_MODEL if llama and model == DEFAULT_MODEL else model
        self.style = "llamacpp" if llama else ("1.76" if version == "1.76" else "1.102")
        self.persistent = keep_alive or llama
        self.port, self.url = port, ""
        self.default_script = Script()
        self.responder: Callable[[dict], Script] | None = None
        self.requests: list[Recorded] = []
        self.generations: list[dict] = []
        self.aborts: list[str | None] = []
        self.disconnects: list[str] = []
        self.outcomes: list[Outcome] = []
        self.connections_accepted = self.open_connections = 0
        self.active_generations = self.max_concurrent_generations = 0
        self._pushed: deque[Script] = deque()
        self._free = slots
        self._waiters: deque[asyncio.Future] = deque()
        self._running: list[Generation] = []
        self._last: Generation | None = None
        self._pending_abort = ""
        self._started = time.time()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Bind and serve in a daemon thread; returns once the port is known."""
        ready = threading.Event()
        errors: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, errors), name="fake-kobold", daemon=True
        )
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]

    def _run(self, ready: threading.Event, errors: list[BaseException]) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", self.port, backlog=2048)
            )
        except OSError as exc:
            errors.append(exc)
            ready.set()
            return
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        ready.set()
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def stop(self) -> None:
        """Close the listener and every connection, then end the thread."""
        if self._loop is None or self._thread is None:
            return
        done = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        done.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    async def _shutdown(self) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- scripting and test helpers ------------------------------------------------

    def push(self, *scripts: Script) -> None:
        """The next generations use these scripts, in order."""
        self._pushed.extend(scripts)

    def _next_script(self, body: dict) -> Script:
        if self._pushed:
            return self._pushed.popleft()
        if self.responder is not None:
            return self.responder(body)
        return self.default_script

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll predicate from a sync test; True once it holds, False at the timeout."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    async def await_until(
        self, predicate: Callable[[], bool], timeout: float = 5.0
    ) -> bool:
        """Like wait_until, without blocking the caller's event loop."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    @property
    def queue(self) -> int:
        """Requests waiting for a generation slot (perf's `queue`)."""
        return len(self._waiters)

    # -- connections ---------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        task = asyncio.current_task()
        self._tasks.add(task)
        self.connections_accepted += 1
        self.open_connections += 1
        conn = Connection(reader, writer)
        try:
            while (req := await conn.read_request()) is not None:
                self.requests.append(
                    Recorded(req.method, req.path, req.headers, req.body, req.json())
                )
                if self.hang:
                    await conn.watch_eof()
                    break
                close = req.headers.get("connection", "").lower() == "close"
                conn.keep = self.persistent and not close
                if not await self._dispatch(conn, req):
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.open_connections -= 1
            self._tasks.discard(task)
            writer.close()

    async def _respond(
        self,
        conn: Connection,
        status: int,
        body: bytes,
        ctype: str = "application/json",
    ) -> bool:
        if self.style == "llamacpp":
            head = llamacpp_head(status, length=len(body), stream=False, ms=1)
        else:
            # 1.76 sends no content-length on its 401/503/404/500 answers.
            sized = self.keep_alive or status in (200, 400)
            length = len(body) if sized else None
            head = kobold_head(
                status, http11=self.keep_alive, length=length, content_type=ctype
            )
        try:
            await BodyWriter(conn.writer, chunked=False).raw(head + body)
        except ConnectionError:
            return False
        return conn.keep

    def _authorized(self, req: Request) -> bool:
        if not self.password:
            return True
        return req.headers.get("authorization", "") == f"Bearer {self.password}"

    # -- routing -------------------------------------------------------------------

    async def _dispatch(self, conn: Connection, req: Request) -> bool:
        route = req.route
        if self.style == "llamacpp":
            return await self._dispatch_llamacpp(conn, req)
        if req.method in ("OPTIONS", "HEAD"):
            return await self._respond(conn, 200, b"", "text/html")
        if route.endswith("/api/extra/generate/check"):
            return await self._check(conn, req)
        if req.method == "GET":
            found = self._info(req)
            if found is None:
                return await self._respond(conn, 404, NOT_FOUND_TEXT, "text/html")
            return await self._respond(conn, 200, dumps(found))
        if route.endswith("/api/extra/tokencount"):
            return await self._tokencount(conn, req)
        if route.endswith("/api/extra/abort"):
            return await self._abort(conn, req)
        api = next(
            (a for suffix, a in _GENERATION_ROUTES if route.endswith(suffix)), None
        )
        return await self._locked_post(conn, req, api)

    async def _dispatch_llamacpp(self, conn: Connection, req: Request) -> bool:
        if req.method == "GET" and req.route == "/v1/models":
            model = {"id": self.model, "object": "model", "owned_by": "me"}
            listing = {"object": "list", "data": [{**model, "permissions": []}]}
            body = dumps(listing).replace(b", ", b",").replace(b": ", b":")
            return await self._respond(conn, 200, body)
        api = {"/v1/chat/completions": "chat", "/v1/completions": "text"}.get(req.route)
        if req.method != "POST" or api is None:
            return await self._respond(conn, 404, b'{"detail":"Not Found"}')
        return await self._locked_post(conn, req, api)

    def _info(self, req: Request) -> dict | None:
        route = req.route
        if route.endswith(("/api/v1/model", "/api/latest/model")):
            hidden = not self._authorized(req)
            return {"result": "koboldcpp/protected-model" if hidden else self.model}
        if route.endswith("/api/extra/version"):
            return {
                "result": "KoboldCpp",
                "version": self.version,
                "protected": bool(self.password),
                "txt2img": False,
                "vision": False,
                "transcribe": False,
            }
        if route.endswith("/api/extra/true_max_context_length"):
            return {"value": self.max_context}
        if route.endswith(
            (
                "/api/v1/config/max_context_length",
                "/api/latest/config/max_context_length",
            )
        ):
            # 1.76 caps it at maxhordectx (4096); 1.102 reports the real size.
            cap = 4096 if self.style == "1.76" else self.max_context
            return {"value": min(self.max_context, cap)}
        if route.endswith(
            ("/api/v1/config/max_length", "/api/latest/config/max_length")
        ):
            return {"value": 400}
        if route.endswith(("/api/v1/info/version", "/api/latest/info/version")):
            return {"result": "1.2.5"}
        if route.endswith("/api/extra/perf"):
            return self._perf()
        if route.endswith("/v1/models"):
            model = {"id": self.model, "object": "model", "created": int(time.time())}
            extra = {"owned_by": "koboldcpp", "permission": [], "root": "koboldcpp"}
            return {"object": "list", "data": [{**model, **extra}]}
        return None

    def _perf(self) -> dict:
        last = self.outcomes[-1] if self.outcomes else None
        stop_reason = 1 if last and last.finish_reason == "stop" else 0
        uptime = time.time() - self._started
        return {
            "last_process": 5.5,
            "last_eval": 14.4,
            "last_token_count": len(token_ids(last.text, special=False)) if last else 0,
            "last_seed": 427185,
            "total_gens": len(self.generations),
            "stop_reason": stop_reason,
            "total_img_gens": 0,
            "queue": self.queue,
            "idle": 1 if self._free > 0 else 0,
            "hordeexitcounter": -1,
            "uptime": uptime,
            "idletime": 0.0 if self._running else uptime,
            "quiet": True,
        }

    async def _tokencount(self, conn: Connection, req: Request) -> bool:
        if not self._authorized(req):
            return await self._respond(conn, 401, dumps(UNAUTHORIZED_BODY))
        body = req.json()
        prompt = body.get("prompt") if isinstance(body, dict) else None
        if not isinstance(prompt, str):
            return await self._respond(conn, 400, dumps({"value": -1}))
        ids = token_ids(prompt, special=bool(body.get("special", True)))
        return await self._respond(conn, 200, dumps({"value": len(ids), "ids": ids}))

    async def _check(self, conn: Connection, req: Request) -> bool:
        if not self._authorized(req):
            return await self._respond(conn, 401, dumps(UNAUTHORIZED_BODY))
        body = req.json() if req.method == "POST" else None
        key = body.get("genkey", "") if isinstance(body, dict) else ""
        last, text = self._last, ""
        if last is not None:
            # Only the owner of the current/last key sees its text (no leaks in multiuser).
            mine = key == last.genkey if key else (not last.genkey and not self.queue)
            text = last.text if mine else ""
        return await self._respond(conn, 200, dumps({"results": [{"text": text}]}))


def main(argv: list[str] | None = None) -> None:
    """Run alone (benchmarks): print `READY <port>` and serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--slots", type=int, default=1)
    parser.add_argument("--multiuser", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--first-token-delay", type=float, default=0.0)
    parser.add_argument("--start-delay", type=float, default=0.0)
    parser.add_argument(
        "--flavor", default="koboldcpp", choices=["koboldcpp", "llamacpp"]
    )
    parser.add_argument("--version", default="1.76")
    parser.add_argument("--keep-alive", action="store_true")
    parser.add_argument("--password", default=None)
    args = parser.parse_args(argv)
    server = FakeKobold(
        version=args.version,
        flavor=args.flavor,
        keep_alive=args.keep_alive,
        password=args.password,
        multiuser=args.multiuser,
        slots=args.slots,
        start_delay=args.start_delay,
        port=args.port,
    )
    server.default_script = Script(
        tokens=[f"tok{i} " for i in range(args.tokens)],
        delay=args.delay,
        first_token_delay=args.first_token_delay,
    )
    server.start()
    print(f"READY {server.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
