"""Where the added time to first token goes: replies one at a time on a Daphne started
with KOBOLDCHAT_TRACE_START=1 (agents/start_trace.py), each step's time between the
marks the server logged, p50 over the replies, beside the same replies read directly."""

import asyncio
import json

import numpy as np

from bench import latency, stack

TOKENS, DELAY = 10, 0.01
# (label, from mark, to mark): consecutive, so that the steps add up to the whole.
STEPS = [
    ("parse the frame", "received", "parsed"),
    ("hop to the sync (ORM) thread", "parsed", "db_thread"),
    ("auth: the user's conversation", "db_thread", "conversation"),
    ("auth: admit (lock the user, one reply, quotas)", "conversation", "admitted"),
    ("DB: write the user message, the reply, usage", "admitted", "rows_written"),
    ("DB: commit", "rows_written", "committed"),
    ("DB: read the history", "committed", "history_read"),
    ("build the user_message payload", "history_read", "payload"),
    ("hop back to the event loop", "payload", "db_done"),
    ("create and start the job", "db_done", "launched"),
    ("job task runs, user_message frame to the layer", "launched", "user_message"),
    ("queue: wait for a turn", "user_message", "queue_turn"),
    ("orchestrator: prompt, intent, start frame", "queue_turn", "start"),
    ("LLM service: API, template, request body", "start", "upstream_request"),
    ("upstream: connect, send, response headers", "upstream_request", "upstream_headers"),
    ("upstream: first chunk", "upstream_headers", "upstream_chunk"),
    ("decode, job, first token frame to the layer", "upstream_chunk", "token"),
]  # fmt: skip


def _traces(log_text: str) -> list[dict]:
    found = []
    for line in log_text.splitlines():
        head, _, body = line.partition("start-trace ")
        if body:
            found.append(json.loads(body))
    return found


def _p50(values: list[float]) -> float | None:
    return round(float(np.percentile(values, 50)), 3) if values else None


def breakdown(app: list, direct: list, traces: list[dict]) -> dict:
    """p50 of each step in ms; the client's sides come from its wall clock."""
    replies = [t for t in traces if "token" in t["us"]]
    rows = []
    for label, begin, end in STEPS:
        spans = [
            (t["us"][end] - t["us"][begin]) / 1000
            for t in replies
            if begin in t["us"] and end in t["us"]
        ]
        rows.append({"step": label, "ms": _p50(spans), "n": len(spans)})
    before, after = [], []
    for trace in replies:  # the reply whose message was sent last before it came in
        received_ns = trace["wall_ns"]
        sent = [r for r in app if r.sent_ns <= received_ns]
        if not sent:
            continue
        reply = max(sent, key=lambda r: r.sent_ns)
        before.append((received_ns - reply.sent_ns) / 1e6)
        if reply.first_ns:
            token_ns = received_ns + trace["us"]["token"] * 1000
            after.append((reply.first_ns - token_ns) / 1e6)
    rows.insert(0, {"step": "client → socket → consumer", "ms": _p50(before)})
    rows.append({"step": "layer → consumer → socket → client", "ms": _p50(after)})
    return {
        "replies": len(replies),
        "steps": rows,
        "ttft_app_ms": _p50([t.ttft_ms for t in app if t.ttft_ms is not None]),
        "ttft_direct_ms": _p50([t.ttft_ms for t in direct if t.ttft_ms is not None]),
    }


def run(current: stack.Stack, upstream, convs, *, quick: bool) -> dict:
    log_path = stack.LOGS / f"daphne-{current.name}.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    daphne = current.daphne(upstream, KOBOLDCHAT_TRACE_START="1")
    try:
        app, direct, _ = asyncio.run(
            latency.pairs(
                daphne,
                upstream.url,
                convs,
                replies=5 if quick else 20,
                tokens=TOKENS,
                delay=DELAY,
            )  # fmt: skip
        )
    finally:
        daphne.stop()
    with open(log_path, "rb") as log:
        log.seek(offset)
        traces = _traces(log.read().decode(errors="replace"))
    return breakdown(app, direct, traces)
