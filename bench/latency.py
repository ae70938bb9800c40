"""Relay overhead, one reply at a time: time to first token and per-token latency through
Daphne + the app against the same upstream read directly; and a 2,000 tokens/s stream."""

import asyncio
import time

from bench import clients
from bench.stats import compare, cpu_cost, cpu_seconds


class Conversations:
    """Hands out the solo user's fresh conversations, one per reply."""

    def __init__(self, seeded: dict):
        self.key = seeded["users"][0]["key"]
        self._ids = iter(seeded["users"][0]["conversations"])

    def __iter__(self):
        return self

    def __next__(self) -> int:
        return next(self._ids)


async def pairs(daphne, upstream_url: str, convs: Conversations, *, replies: int,
                 tokens: int, delay: float) -> tuple[list, list, dict]:  # fmt: skip
    """`replies` replies on each path, alternating, on one socket and one client; and
    the CPU seconds spent by the Daphne process over them all (`app`: a reply's work
    after its `end` included; idle, it spends 1-4 ms a second) and by this process
    reading the direct ones (`direct`: httpx, SSE, JSON, the stamps)."""
    app, direct, cpu = [], [], {"app": 0.0, "direct": 0.0}
    pid = daphne.process.pid
    socket = await clients.ws_connect(daphne.ws_url, convs.key)
    began = cpu_seconds(pid)
    async with clients.direct_client(2) as client:
        for _ in range(replies):
            before = time.process_time()
            direct.append(
                await clients.direct_reply(client, upstream_url, tokens, delay)
            )
            cpu["direct"] += time.process_time() - before
            app.append(await clients.ws_reply(socket, next(convs), tokens, delay))
        await asyncio.sleep(0.5)  # the last reply's work after its `end`
    cpu["app"] = cpu_seconds(pid) - began
    await socket.close()
    return app, direct, cpu


def _figures(app: list, direct: list, cpu: dict) -> dict:
    def tokens(traces):
        return [ms for t in traces for ms in t.latencies_ms]

    def ttft(traces):
        return [t.ttft_ms for t in traces if t.ttft_ms is not None]

    return {
        "replies": len(app),
        "complete": {
            "app": sum(t.complete for t in app),
            "direct": sum(t.complete for t in direct),
        },
        "errors": sorted({e for t in app + direct for e in t.errors}),
        "frames_per_reply": {
            "app": round(sum(t.frames for t in app) / max(1, len(app)), 1),
            "direct": round(sum(t.frames for t in direct) / max(1, len(direct)), 1),
        },
        "ttft_ms": compare(ttft(app), ttft(direct)),
        "token_latency_ms": compare(tokens(app), tokens(direct)),
        "cpu": cpu_cost(cpu["app"], app),
        "direct_cpu": cpu_cost(cpu["direct"], direct),
    }


async def relay_overhead(daphne, upstream_url, convs, *, replies: int) -> dict:
    """Replies of 40 tokens at 100 tokens/s, the pace of a small local model."""
    tokens, delay = 40, 0.01
    app, direct, cpu = await pairs(
        daphne, upstream_url, convs, replies=replies, tokens=tokens, delay=delay
    )
    return {"tokens": tokens, "delay_s": delay, **_figures(app, direct, cpu)}


async def throughput(daphne, upstream_url, convs, *, replies: int, tokens: int) -> dict:
    """An upstream at 2,000 tokens/s: every token must arrive, once, in order."""
    delay = 0.0005
    app, direct, cpu = await pairs(
        daphne, upstream_url, convs, replies=replies, tokens=tokens, delay=delay
    )
    figures = _figures(app, direct, cpu)
    figures["in_order"] = all(t.indexes == list(range(tokens)) for t in app)
    figures["tokens_per_s"] = {
        "app": [t.tokens_per_s for t in app],
        "direct": [t.tokens_per_s for t in direct],
    }
    return {"tokens": tokens, "delay_s": delay, **figures}


def run(daphne, upstream_url: str, convs: Conversations, *, quick: bool) -> dict:
    async def both():
        return {
            "relay": await relay_overhead(
                daphne, upstream_url, convs, replies=5 if quick else 25
            ),
            "throughput": await throughput(
                daphne,
                upstream_url,
                convs,
                replies=2 if quick else 3,
                tokens=1000 if quick else 4000,
            ),  # fmt: skip
        }

    return asyncio.run(both())
