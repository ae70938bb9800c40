"""What a pool run's traces and stores say (bench/pool.py): Jain's index of the users'
completed replies over time, how each backend's slots were used, the replies' rows, the
Redis commands run, and the table of a run."""

import os
import sqlite3
import subprocess
from contextlib import closing

import psycopg
import redis

from bench.clients import Trace
from bench.stack import RESULTS, Stack
from bench.stats import summary

SLOTS = 2  # each fake backend's, and the app's BACKEND_CONCURRENCY


def jain(counts: list[int]) -> float | None:
    """Jain's index (Σx)² / (n·Σx²): 1 when all are equal, 1/n when one has all."""
    squares = sum(x * x for x in counts)
    return round(sum(counts) ** 2 / (len(counts) * squares), 4) if squares else None


def best_jain(total: int, n: int) -> float | None:
    """The index of `total` replies split among `n` as evenly as whole replies allow."""
    each, more = divmod(total, n)
    return jain([each + 1] * more + [each] * (n - more)) if total else None


def fairness(traces: list[list[Trace]], done: list[list[int]], began: int, wall: float):
    """The index at each tenth of the run's wall time, over the users who had sent a
    message by then (x = the replies each had received whole), beside the best one."""
    moments = []
    for tenth in range(1, 11):
        at = began + int(wall * 1e9 * tenth / 10)
        counts = [
            sum(1 for end in ends if end <= at)
            for sent, ends in zip(traces, done, strict=True)
            if sent and sent[0].sent_ns <= at
        ]
        moments.append({
            "at": tenth / 10, "completed": sum(counts), "users": len(counts),
            "jain": jain(counts), "best": best_jain(sum(counts), len(counts)),
        })  # fmt: skip
    measured = [m for m in moments if m["jain"] is not None]
    return {
        "moments": moments,
        "min": min((m["jain"] for m in measured), default=None),
        "at_half": moments[4]["jain"],
        "min_of_best": min(
            (round(m["jain"] / m["best"], 4) for m in measured), default=None
        ),
    }


def incomplete(traces: list[Trace]) -> list[dict]:
    """What went wrong with each reply that did not arrive whole (the first 20)."""
    return [
        {"status": t.status, "errors": t.errors, "tokens": len(t.indexes),
         "expected": t.expected, "in_order": t.indexes == sorted(t.indexes)}
        for t in traces if not t.complete
    ][:20]  # fmt: skip


def stamps(trace: Trace) -> tuple[int, int]:
    """When the upstream wrote the reply's first and last token (their stamps)."""
    first = trace.first_ns - int(trace.latencies_ms[0] * 1e6)
    return first, trace.last_ns - int(trace.latencies_ms[-1] * 1e6)


def backend_spans(conversations, traces, rows, urls) -> dict[str, list]:
    """Each backend's complete replies as (first, last) stamps: the k-th trace of a
    user is the k-th reply row of its conversation (`rows`: conversation, URL, ...)."""
    by_conversation: dict[int, list[tuple]] = {}
    for row in rows:
        by_conversation.setdefault(row[0], []).append(row)
    spans: dict[str, list] = {url: [] for url in urls}
    for conversation, seen in zip(conversations, traces, strict=True):
        found = by_conversation.get(conversation, [])
        for trace, row in zip(seen, found, strict=False):
            if trace.complete and row[1] in spans:
                spans[row[1]].append(stamps(trace))
    return spans


def occupancy(spans: list[tuple[int, int]]) -> tuple[int, list[float]]:
    """Most replies generating at once on one backend, and how long a slot stayed idle
    (ms, from a reply's last token to the first token of the next to take a slot)."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    freed, gaps = [], []
    for start, end in sorted(spans):
        if idle := [e for e in freed if e <= start]:
            gaps.append((start - min(idle)) / 1e6)
            freed.remove(min(idle))
        freed.append(end)
    return most, gaps


def spread(rows, spans: dict, counted: dict, peaks: dict) -> dict:
    """Per backend: its replies in the database and by its own count, the most it
    generated and kept waiting at once; and every slot's idle gaps (ms)."""
    used = {url: occupancy(found) for url, found in spans.items()}
    return {
        "per_backend": {url: {
            "replies_db": sum(r[1] == url for r in rows),
            "generations_upstream": counted[url],
            "most_generating": used[url][0],
            "most_waiting_inside": peaks.get(url, 0),
        } for url in spans},
        "slot_gap_ms": summary([gap for _, gaps in used.values() for gap in gaps]),
    }  # fmt: skip


def ramp_and_drain(spans: dict, began: int) -> dict:
    """How long after the first send every slot was generating, and how long before
    the last token the first slot fell idle for good (ms): what the run's two ends
    cost, beside the hand-overs."""
    slots = SLOTS * len(spans)
    starts = sorted(s for found in spans.values() for s, _ in found)
    ends = sorted(e for found in spans.values() for _, e in found)
    if len(starts) < slots:
        return {"ramp_ms": None, "drain_ms": None}
    return {
        "ramp_ms": round((starts[slots - 1] - began) / 1e6, 1),
        "drain_ms": round((ends[-1] - ends[-slots]) / 1e6, 1),
    }


def replies_in_db(current: Stack, conversations: list[int]) -> list[tuple]:
    """(conversation, backend URL, status, attempts) of each reply, in order."""
    sql = (
        "SELECT m.conversation_id, b.url, m.status, m.backend_attempts"
        " FROM chat_message m LEFT JOIN chat_backend b ON b.id = m.backend_id"
        " WHERE m.role = 'assistant' AND m.conversation_id IN"
        f" ({','.join(str(int(c)) for c in conversations)}) ORDER BY m.id"
    )
    if current.database_url.startswith("sqlite:///"):
        path = current.database_url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(path)) as conn:
            return conn.execute(sql).fetchall()
    with psycopg.connect(current.database_url) as conn:
        return conn.execute(sql).fetchall()


def redis_counters(current: Stack) -> dict[str, float]:
    """The Redis server's CPU seconds so far and calls of each command (`cmd:<name>`),
    for all its clients."""
    if not current.redis_url:
        return {}
    client = redis.Redis.from_url(current.redis_url)
    cpu = client.info("cpu")
    found = {"cpu_s": cpu["used_cpu_user"] + cpu["used_cpu_sys"]}
    for name, stats in client.info("commandstats").items():
        found[name.replace("cmdstat_", "cmd:")] = stats["calls"]
    return found


def redis_figures(before: dict, after: dict) -> dict:
    """What the Redis server did between two readings of its counters."""
    ran = {k: n - before.get(k, 0) for k, n in after.items()}
    cpu = ran.pop("cpu_s", 0.0)
    calls = {k[4:]: n for k, n in sorted(ran.items(), key=lambda c: -c[1]) if n}
    return {
        "redis_cpu_s": round(cpu, 2),
        "redis_commands": sum(calls.values()),
        "redis_by_command": calls,
    }


def revision() -> str:
    """The app's commit, and the app files changed since (read only: no index lock)."""
    git = ["git", "--no-optional-locks", "-C", str(RESULTS.parent.parent)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True)
    if head.returncode:
        return "an unknown commit (not a git checkout)"
    changed = subprocess.run(
        [*git, "status", "--porcelain", "--", "agents", "chat", "koboldchat"],
        capture_output=True, text=True,
    ).stdout.split()[1::2]  # fmt: skip
    found = head.stdout.decode().strip()
    return found + (
        f" + uncommitted changes to {', '.join(changed)}" if changed else ""
    )


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _ms(figures: dict) -> str:
    return f"{figures['p50']} / {figures['p90']} ms"


def _cells(r: dict) -> list[str]:
    d, a, o, f = r["direct"], r["app"], r["overhead"], r["app"]["fairness"]
    backends, plan = list(a["per_backend"].values()), r["plan"]
    turn, added = o["queue_turn_ms"], o["ttft_ms"]["added"]
    ideal = (plan["users"] / (len(backends) * SLOTS) - 1) * d["reply_s"] * 1000
    cpu = a["daphne_cpu_s"]
    redis = (
        f"; Redis server: {a['redis_cpu_s']} s, {a['redis_commands']} commands"
        if a["redis_commands"] else ""
    )  # fmt: skip

    def each(key: str) -> str:
        return " / ".join(str(b[key]) for b in backends)

    return [
        f"{d['replies_per_s']} ({d['complete']}/{d['replies']} in {d['wall_s']} s, "
        f"a reply {d['reply_s']} s)",
        f"{a['replies_per_s']} ({a['complete']}/{a['replies']} in {a['wall_s']} s, "
        f"errors {a['errors'] or 'none'})",
        f"**{r['ratio']}** ({_verdict(r['ratio'] >= 0.9)})",
        f"**{f['at_half']}** ({_verdict((f['at_half'] or 0) >= 0.9)}); lowest "
        f"{f['min']}, {f['min_of_best']} of the best whole replies allow "
        f"({_verdict((f['min_of_best'] or 0) >= 0.9)})",
        " · ".join(f"{m['jain']} ({m['best']})" for m in f["moments"]),
        f"{each('replies_db')} (upstreams: {each('generations_upstream')}; "
        f"failed over: {len(a['failed_over'])})",
        f"{each('most_generating')}; waiting inside: {each('most_waiting_inside')}",
        f"{_ms(a['slot_gap_ms'])} (n {a['slot_gap_ms']['n']}; direct TTFT p50 "
        f"{d['ttft_ms']['p50']} ms)",
        f"{a['ramp_ms']} / {a['drain_ms']} ms",
        _ms(a["tail_ms"]),
        f"{_ms(a['ttft_ms'])} (ideal wait {ideal:.0f} ms)",
        f"{cpu} s, {round(cpu * 1000 / max(1, a['complete']), 1)} ms a reply{redis}",
        f"{o['ttft_ms']['direct']['p50']} → {o['ttft_ms']['app']['p50']} ms: "
        f"+{added.get('p50')} / +{added.get('p90')} ms ({o['complete']} replies)",
        f"**{turn['p50']}** / {turn['p90']} ms (n {turn['n']}; "
        f"{_verdict((turn['p50'] or 99) <= 2)})",
    ]  # fmt: skip


FIGURES = [
    ("Direct capacity, replies/s (2 streams per backend)", ""),
    ("Through the app, replies/s (one socket per user)", ""),
    ("Throughput app / direct", "≥ 0.90"),
    ("Fairness: Jain's index at 50 % of the run; lowest of the tenths", "≥ 0.9"),
    ("Jain's index at 10 %, 20 %, … 100 % (best whole replies allow)", ""),
    ("Replies per backend (database)", "even"),
    ("Most generating at once per backend (token stamps)", "≤ 2; 0 waiting"),
    ("Slot idle between two replies under load, p50 / p90", ""),
    ("Every slot busy after the first send / first slot idle to the end", ""),
    ("Last token → `end` frame under load, p50 / p90", ""),
    ("Time to first token under load (the wait in line), p50 / p90", ""),
    ("Daphne CPU over the run under load", ""),
    ("No contention: time to first token, direct → app (added p50 / p90)", ""),
    ("No contention: the reply's turn in the line (placement), p50 / p90", "≤ 2 ms"),
]


def table(results: list[dict]) -> str:
    head = ["figure", *(r["stack"] for r in results), "target"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    columns = [_cells(r) for r in results]
    for row, (label, target) in enumerate(FIGURES):
        cells = [label, *(c[row] for c in columns), target or "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def page(results: list[dict], *, command: str, seconds: float, load: str, app: str):
    """bench/results/pool.md: what was run, on what, and the table."""
    plan = results[0]["plan"]
    return (
        f"# The backend pool\n\nCommand: `{command}` on the app at {app} "
        f"({seconds:.0f} s on this "
        f"{os.cpu_count()}-core machine, load average {load} at the end: other work "
        f"may share the CPU). {len(results[0]['app']['per_backend'])} fake backends "
        f"× {SLOTS} slots; {plan['users']} users × {plan['messages']} messages of "
        f"{plan['tokens']} tokens, {plan['delay']} s apart; {plan['solo']} replies "
        "one at a time each path for the overhead. How each figure is measured: "
        f'bench/README.md ("The backend pool").\n\n{table(results)}\n'
    )
