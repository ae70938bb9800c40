"""Database writes per reply against reply length, counted from the statements a Daphne
with the write logger (bench/sql_trace) sent while each reply ran."""

import asyncio
import math
import time
from collections import Counter
from pathlib import Path

from bench import clients

LENGTHS = ((1, 0.0), (100, 0.01), (10_000, 0.0005))  # tokens, seconds between tokens
SETTLE_S = 0.5  # the final write lands after `end` is sent; wait for it


def _writes_between(log: Path, start_ns: int, end_ns: int) -> Counter:
    counts: Counter = Counter()
    for line in log.read_text().splitlines():
        stamp, verb, table = line.split()
        if start_ns <= int(stamp) <= end_ns:
            counts[f"{verb} {table}"] += 1
    return counts


async def _measure(ws_url: str, key: str, conversations, log: Path, quick: bool):
    socket = await clients.ws_connect(ws_url, key)
    await clients.ws_reply(socket, next(conversations), 1, 0.0)  # warm-up
    rows = []
    for tokens, delay in LENGTHS:
        if quick and tokens > 1000:
            tokens = 2000
        trace = await clients.ws_reply(socket, next(conversations), tokens, delay)
        await asyncio.sleep(SETTLE_S)
        end_ns = time.time_ns()
        counts = _writes_between(log, trace.sent_ns, end_ns)
        seconds = (trace.last_ns - trace.sent_ns) / 1e9 if trace.last_ns else 0.0
        checkpoints = counts.get("UPDATE chat_message", 0)
        rows.append(
            {
                "tokens": tokens,
                "complete": trace.complete,
                "reply_s": round(seconds, 2),
                "writes": sum(counts.values()),
                "by_statement": dict(sorted(counts.items())),
                "message_updates": checkpoints,
            }
        )
    await socket.close()
    base = rows[0]["writes"]
    for row in rows:
        # Beyond the 1-token reply's writes, only checkpoints (≤ one a second) may add.
        row["extra_writes"] = row["writes"] - base
        row["within_bound"] = row["extra_writes"] <= math.ceil(row["reply_s"]) + 1
    return rows


def run(ws_url: str, key: str, conversations, log: Path, *, quick: bool) -> list[dict]:
    return asyncio.run(_measure(ws_url, key, conversations, log, quick))
