"""The backend pool under load (issue 21): four stamping upstreams of two slots each, read
directly, then the same replies from many users through the app, on each stack:
throughput, fairness across users, spread over the backends, scheduling overhead."""

import argparse
import asyncio
import json
import os
import shlex
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import clients, latency, stack, startpath  # noqa: E402
from bench import pool_figures as figures  # noqa: E402
from bench.pool_figures import SLOTS  # noqa: E402
from bench.stats import cpu_seconds, latencies_against, summary  # noqa: E402

BACKENDS = 4
REPLY_TIMEOUT_S = 120  # waiting in line included
POLL_S = 0.05  # how often each upstream's /api/extra/perf is read


@dataclass(frozen=True)
class Plan:
    users: int
    messages: int  # each user's, one after another
    tokens: int
    delay: float
    solo: int  # one-at-a-time replies, each path, for the overhead


FULL = Plan(users=40, messages=5, tokens=20, delay=0.05, solo=30)
QUICK = Plan(users=16, messages=3, tokens=10, delay=0.05, solo=10)


def pool_env(upstreams: list[stack.Upstream]) -> dict[str, str]:
    """The Daphne of the pool: the first upstream, the others, two slots each."""
    return {
        "KOBOLDCPP_URLS": ",".join(u.url for u in upstreams[1:]),
        "BACKEND_CONCURRENCY": str(SLOTS),
    }


async def perf(client: httpx.AsyncClient, urls: list[str]) -> list[dict]:
    """Each upstream's /api/extra/perf (`queue`: waiting for a slot of its own)."""
    found = await asyncio.gather(*(client.get(f"{u}/api/extra/perf") for u in urls))
    return [answer.json() for answer in found]


async def watch_queues(urls: list[str], peaks: dict, stop: asyncio.Event) -> None:
    """The most requests each upstream kept waiting (more than its slots were sent)."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        while not stop.is_set():
            for url, answer in zip(urls, await perf(client, urls), strict=True):
                peaks[url] = max(peaks.get(url, 0), answer["queue"])
            await asyncio.sleep(POLL_S)


async def generations(urls: list[str]) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        found = await perf(client, urls)
    return {url: answer["total_gens"] for url, answer in zip(urls, found, strict=True)}


async def direct_capacity(urls: list[str], plan: Plan) -> dict:
    """Two streams per upstream, each reading its share of the replies in turn."""
    total, streams = (
        plan.users * plan.messages,
        [u for u in urls for _ in range(SLOTS)],
    )
    async with clients.direct_client(len(streams)) as client:

        async def stream(index: int, url: str) -> list[clients.Trace]:
            share = total // len(streams) + (index < total % len(streams))
            return [
                await clients.direct_reply(client, url, plan.tokens, plan.delay)
                for _ in range(share)
            ]

        began = time.monotonic()
        found = await asyncio.gather(*(stream(i, u) for i, u in enumerate(streams)))
        wall = time.monotonic() - began
    traces = [t for batch in found for t in batch]
    done = sum(t.complete for t in traces)
    reply_s = float(np.mean([(t.last_ns - t.sent_ns) / 1e9 for t in traces]))
    return {
        "replies": len(traces), "complete": done, "wall_s": round(wall, 2),
        "replies_per_s": round(done / wall, 3),
        "reply_s": round(reply_s, 3),
        "ttft_ms": summary([t.ttft_ms for t in traces if t.ttft_ms is not None]),
    }  # fmt: skip


async def _users(daphne, keys: list[str], conversations: list[int], plan: Plan):
    """Each user on its socket sends its messages in its conversation, each once the
    reply before has ended; their traces and when each ended (ns), and the wall time."""
    sockets = await asyncio.gather(
        *(clients.ws_connect(daphne.ws_url, k) for k in keys)
    )
    traces: list[list] = [[] for _ in keys]
    done: list[list[int]] = [[] for _ in keys]

    async def one(index: int, socket, conversation: int) -> None:
        for _ in range(plan.messages):
            trace = await asyncio.wait_for(
                clients.ws_reply(socket, conversation, plan.tokens, plan.delay),
                REPLY_TIMEOUT_S,
            )
            traces[index].append(trace)
            done[index].append(time.time_ns())

    began, ran = time.time_ns(), time.monotonic()
    failures = await asyncio.gather(
        *(one(i, s, c) for i, (s, c) in
          enumerate(zip(sockets, conversations, strict=True))),
        return_exceptions=True,
    )  # fmt: skip
    wall = time.monotonic() - ran
    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    failed = [repr(f) for f in failures if isinstance(f, BaseException)]
    return traces, done, began, wall, failed


async def through_app(daphne, current, urls: list[str], plan: Plan) -> dict:
    users = current.seeded["users"][1 : 1 + plan.users]
    conversations = [u["conversations"][0] for u in users]
    peaks, stop = {}, asyncio.Event()
    before, counters = await generations(urls), figures.redis_counters(current)
    cpu = cpu_seconds(daphne.process.pid)
    watcher = asyncio.create_task(watch_queues(urls, peaks, stop))
    traces, done, began, wall, failed = await _users(
        daphne, [u["key"] for u in users], conversations, plan
    )
    cpu = cpu_seconds(daphne.process.pid) - cpu
    stop.set()
    await watcher
    after, redis = await generations(urls), figures.redis_counters(current)
    rows = figures.replies_in_db(current, conversations)
    spans = figures.backend_spans(conversations, traces, rows, urls)
    counted = {url: after[url] - before[url] for url in urls}
    flat = [t for seen in traces for t in seen]
    complete = sum(t.complete for t in flat)
    errors = dict(Counter([e for t in flat for e in set(t.errors)] + failed))
    return {
        "replies": plan.users * plan.messages, "complete": complete, "errors": errors,
        "incomplete": figures.incomplete(flat),
        "daphne_cpu_s": round(cpu, 2), **figures.redis_figures(counters, redis),
        "wall_s": round(wall, 2), "replies_per_s": round(complete / wall, 3),
        "ttft_ms": summary([t.ttft_ms for t in flat if t.ttft_ms is not None]),
        "fairness": figures.fairness(traces, done, began, wall),
        "db_statuses": {s: sum(r[2] == s for r in rows) for s in {r[2] for r in rows}},
        "failed_over": [r[3] for r in rows if r[3]],
        **figures.spread(rows, spans, counted, peaks),
        **figures.ramp_and_drain(spans, began),
        "tail_ms": summary([
            (end - t.last_ns) / 1e6 for seen, ends in zip(traces, done, strict=True)
            for t, end in zip(seen, ends, strict=True) if t.last_ns
        ]),
    }  # fmt: skip


def overhead(current, upstreams, plan: Plan) -> dict:
    """One reply at a time, through the app and direct in turn, on a Daphne of the
    pool that logs its start trace: what a reply's turn in the line costs alone."""
    log_path = stack.LOGS / f"daphne-{current.name}.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    daphne = current.daphne(
        upstreams[0], KOBOLDCHAT_TRACE_START="1", **pool_env(upstreams)
    )
    try:
        solo = latency.Conversations(current.seeded)
        app, direct, _ = asyncio.run(
            latency.pairs(
                daphne,
                upstreams[0].url,
                solo,
                replies=plan.solo,
                tokens=startpath.TOKENS,
                delay=startpath.DELAY,
            )  # fmt: skip
        )
    finally:
        daphne.stop()
    with open(log_path, "rb") as log:
        log.seek(offset)
        marks = startpath._traces(log.read().decode(errors="replace"))
    turn = [
        (t["us"]["queue_turn"] - t["us"]["user_message"]) / 1000
        for t in marks if "queue_turn" in t["us"] and "user_message" in t["us"]
    ]  # fmt: skip
    return {
        "complete": sum(t.complete for t in app),
        "direct_complete": sum(t.complete for t in direct),
        "incomplete": figures.incomplete(app),
        "ttft_ms": latencies_against(app, direct)["ttft_ms"],
        "queue_turn_ms": summary(turn),
    }


def run_stack(make, upstreams: list[stack.Upstream], plan: Plan, env: dict) -> dict:
    began = time.monotonic()
    current = make()
    current.extra_env = env
    stack.prepare(
        current, users=plan.users + 1, conversations=1, solo=plan.solo, history=2
    )
    urls = [u.url for u in upstreams]
    result: dict = {"stack": current.name, "plan": asdict(plan)}
    result["direct"] = asyncio.run(direct_capacity(urls, plan))
    print(f"[{current.name}] direct {result['direct']['replies_per_s']}/s", flush=True)
    daphne = current.daphne(upstreams[0], **pool_env(upstreams))
    try:
        result["app"] = asyncio.run(through_app(daphne, current, urls, plan))
    finally:
        daphne.stop()
    app, direct = result["app"]["replies_per_s"], result["direct"]["replies_per_s"]
    result["ratio"] = round(app / direct, 3)
    print(f"[{current.name}] app {app}/s", flush=True)
    result["overhead"] = overhead(current, upstreams, plan)
    result["seconds"] = round(time.monotonic() - began, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stacks", default="memory,redis", help="memory, redis")
    parser.add_argument("--quick", action="store_true", help="fewer users and replies")
    parser.add_argument(
        "--daphne-env", action="append", default=[], metavar="NAME=VALUE",
        help="extra environment for the Daphne processes (to measure a change)",
    )  # fmt: skip
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.daphne_env)
    plan = QUICK if args.quick else FULL
    makers = {"memory": stack.memory_stack, "redis": stack.redis_stack}
    stack.RESULTS.mkdir(exist_ok=True)
    stack.raise_file_limit()
    began = time.monotonic()
    upstreams = [stack.Upstream(slots=SLOTS) for _ in range(BACKENDS)]
    try:
        results = [
            run_stack(makers[name], upstreams, plan, env)
            for name in args.stacks.split(",")
        ]
    finally:
        for upstream in upstreams:
            upstream.stop()
    command = shlex.join([".venv/bin/python", "bench/pool.py", *sys.argv[1:]])
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    seconds, app = time.monotonic() - began, figures.revision()
    text = figures.page(results, command=command, seconds=seconds, load=load, app=app)
    (stack.RESULTS / "pool.md").write_text(text)
    (stack.RESULTS / "pool.json").write_text(json.dumps(results, indent=2))
    print(text)


if __name__ == "__main__":
    main()
