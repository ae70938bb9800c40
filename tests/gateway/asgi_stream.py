"""An httpx transport that runs the ASGI application in this event loop and streams its
body as it comes (httpx.ASGITransport waits for the whole body first); closing the
response before the end sends `http.disconnect`, as a client hanging up on Daphne does."""

import asyncio

import httpx


class _Body(httpx.AsyncByteStream):
    def __init__(self, chunks: asyncio.Queue, app_task: asyncio.Task, hang_up):
        self._chunks = chunks
        self._app_task = app_task
        self._hang_up = hang_up

    async def __aiter__(self):
        while True:
            chunk = await self._chunks.get()
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        self._hang_up()
        try:
            await asyncio.wait_for(self._app_task, timeout=10)
        except (TimeoutError, asyncio.CancelledError):
            self._app_task.cancel()


class StreamingASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app):
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        gone = asyncio.Event()
        sent_body = False
        started: asyncio.Future = asyncio.get_running_loop().create_future()
        chunks: asyncio.Queue = asyncio.Queue()

        async def receive():
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    chunks.put_nowait(message["body"])
                if not message.get("more_body", False):
                    chunks.put_nowait(None)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": ("127.0.0.1", 50000),
            "server": (request.url.host, request.url.port or 80),
        }

        async def run():
            try:
                await self.app(scope, receive, send)
            finally:
                chunks.put_nowait(None)
                if not started.done():
                    started.set_exception(RuntimeError("the app sent no response"))

        task = asyncio.create_task(run())
        try:
            start = await started
        except asyncio.CancelledError:  # the caller gave up before any answer
            gone.set()
            raise
        return httpx.Response(
            start["status"],
            headers=[(k, v) for k, v in start.get("headers", [])],
            stream=_Body(chunks, task, gone.set),
            request=request,
        )
