"""Relay overhead, one reply at a time: time to first token and per-token latency through
Daphne + the app against the same upstream read directly; and a 2,000 tokens/s stream."""

import asyncio

from bench import clients
from bench.stats import compare


class Conversations:
    """Hands out the solo user's fresh conversations, one per reply."""

    def __init__(self, seeded: dict):
        self.key = seeded["users"][0]["key"]
        self._ids = iter(seeded["users"][0]["conversations"])

    def __iter__(self):
        return self

    def __next__(self) -> int:
        return next(self._ids)


async def _pairs(ws_url: str, upstream_url: str, convs: Conversations, *, replies: int,
                 tokens: int, delay: float) -> tuple[list, list]:  # fmt: skip
    """`replies` replies on each path, alternating, on one socket and one client."""
    app, direct = [], []
    socket = await clients.ws_connect(ws_url, convs.key)
    async with clients.direct_client(2) as client:
        for _ in range(replies):
            direct.append(
                await clients.direct_reply(client, upstream_url, tokens, delay)
            )
            app.append(await clients.ws_reply(socket, next(convs), tokens, delay))
    await socket.close()
    return app, direct


def _figures(app: list, direct: list) -> dict:
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
    }


async def relay_overhead(ws_url, upstream_url, convs, *, replies: int) -> dict:
    """Replies of 40 tokens at 100 tokens/s, the pace of a small local model."""
    tokens, delay = 40, 0.01
    app, direct = await _pairs(
        ws_url, upstream_url, convs, replies=replies, tokens=tokens, delay=delay
    )
    return {"tokens": tokens, "delay_s": delay, **_figures(app, direct)}


async def throughput(ws_url, upstream_url, convs, *, replies: int, tokens: int) -> dict:
    """An upstream at 2,000 tokens/s: every token must arrive, once, in order."""
    delay = 0.0005
    app, direct = await _pairs(
        ws_url, upstream_url, convs, replies=replies, tokens=tokens, delay=delay
    )
    figures = _figures(app, direct)
    figures["in_order"] = all(t.indexes == list(range(tokens)) for t in app)
    figures["tokens_per_s"] = {
        "app": [t.tokens_per_s for t in app],
        "direct": [t.tokens_per_s for t in direct],
    }
    return {"tokens": tokens, "delay_s": delay, **figures}


def run(ws_url: str, upstream_url: str, convs: Conversations, *, quick: bool) -> dict:
    async def both():
        return {
            "relay": await relay_overhead(
                ws_url, upstream_url, convs, replies=5 if quick else 25
            ),
            "throughput": await throughput(
                ws_url,
                upstream_url,
                convs,
                replies=2 if quick else 3,
                tokens=1000 if quick else 4000,
            ),  # fmt: skip
        }

    return asyncio.run(both())
