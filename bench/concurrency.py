"""Many sockets on one Daphne process, each streaming a reply at once: completion, latency
against as many direct streams, and the process's resident memory per connected socket."""

import asyncio
import time

import psutil

from bench import clients
from bench.stats import cpu_cost, cpu_seconds, latencies_against

TOKENS, DELAY = 40, 0.025  # a one-second reply at 40 tokens/s
# A frame older than the channel layers' expiry (60 s) is dropped: waiting longer is moot.
REPLY_TIMEOUT_S = 90


def _rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


async def _connect_all(ws_url: str, keys: list[str]) -> list:
    """One socket (or the exception of its handshake) per key, 50 handshakes at a time
    (the listen backlog is finite)."""
    sockets = []
    for start in range(0, len(keys), 50):
        batch = keys[start : start + 50]
        sockets += await asyncio.gather(
            *(clients.ws_connect(ws_url, k) for k in batch), return_exceptions=True
        )
    return sockets


async def _sample_peak(pid: int, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], _rss(pid))
        await asyncio.sleep(0.1)


async def _streams(sockets, conversation_ids, pid: int) -> tuple[list, int, float]:
    """Every socket asks at once; returns traces, peak RSS and the wall time."""
    peak, stop = [_rss(pid)], asyncio.Event()
    sampler = asyncio.create_task(_sample_peak(pid, peak, stop))
    began = time.monotonic()

    async def one(socket, conversation_id):
        if isinstance(socket, BaseException):  # the handshake failed
            raise socket
        return await asyncio.wait_for(
            clients.ws_reply(socket, conversation_id, TOKENS, DELAY), REPLY_TIMEOUT_S
        )

    traces = await asyncio.gather(
        *(one(s, c) for s, c in zip(sockets, conversation_ids, strict=True)),
        return_exceptions=True,
    )
    wall = time.monotonic() - began
    stop.set()
    await sampler
    return traces, peak[0], wall


async def _direct(upstream_url: str, count: int) -> list:
    async with clients.direct_client(count) as client:
        return await asyncio.gather(
            *(
                clients.direct_reply(client, upstream_url, TOKENS, DELAY)
                for _ in range(count)
            )
        )


async def level(daphne, upstream_url: str, seeded: dict, count: int, slot: int) -> dict:
    """One concurrency level on a fresh Daphne process (`slot`: which conversation)."""
    pid = daphne.process.pid
    users = seeded["users"][:count]
    keys = [u["key"] for u in users]
    first = await _connect_all(daphne.ws_url, keys[:1])
    await asyncio.sleep(1.0)
    rss_1 = _rss(pid)
    sockets = first + await _connect_all(daphne.ws_url, keys[1:])
    await asyncio.sleep(1.0)
    rss_n = _rss(pid)
    direct = await _direct(upstream_url, count)
    cpu_before = cpu_seconds(pid)
    traces, peak, wall = await _streams(
        sockets, [u["conversations"][slot] for u in users], pid
    )
    await asyncio.sleep(0.5)  # the replies' work after their `end` (token counts)
    cpu = cpu_seconds(pid) - cpu_before
    failures = [t for t in traces if isinstance(t, BaseException)]
    app = [t for t in traces if not isinstance(t, BaseException)]
    await asyncio.gather(
        *(s.close() for s in sockets if not isinstance(s, BaseException)),
        return_exceptions=True,
    )
    errors: dict[str, int] = {}
    for trace in app:
        for code in set(trace.errors):  # an `error` frame, then `end` with its code
            errors[code] = errors.get(code, 0) + 1
    for failure in failures:
        errors[type(failure).__name__] = errors.get(type(failure).__name__, 0) + 1
    return {
        "sockets": count,
        "completed": sum(t.complete for t in app),
        "completion_rate": round(sum(t.complete for t in app) / count, 4),
        "direct_completed": sum(t.complete for t in direct),
        "errors": errors,
        "wall_s": round(wall, 2),
        "cpu": cpu_cost(cpu, app),
        "tokens_per_s": round(sum(len(t.indexes) for t in app) / wall, 1),
        "rss_1_mb": round(rss_1 / 2**20, 1),
        "rss_n_mb": round(rss_n / 2**20, 1),
        "rss_peak_mb": round(peak / 2**20, 1),
        "kb_per_socket": round((rss_n - rss_1) / max(1, count - 1) / 1024, 1),
        "kb_per_streaming_socket": round((peak - rss_1) / max(1, count - 1) / 1024, 1),
        **latencies_against(app, direct),
    }
