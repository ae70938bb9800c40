"""`make bench`: every benchmark, on both stacks (memory layer + SQLite, Redis +
PostgreSQL), against one upstream; writes bench/results/ and prints the table. When
KOBOLDCPP_BENCH_URL answers, the real-backend benchmark too (bench/real_backend.py)."""

import argparse
import asyncio
import os
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (  # noqa: E402
    concurrency,
    dbwrites,
    history,
    latency,
    real_backend,
    report,
    stack,
    startpath,
)

SOLO_REPLIES = 70  # one-at-a-time replies need a fresh conversation each


def run_stack(make, upstream, levels: list[int], *, quick: bool, env: dict) -> dict:
    began = time.monotonic()
    made = make()
    made.extra_env = env
    current = stack.prepare(
        made, users=max(levels), conversations=len(levels), solo=SOLO_REPLIES,
        history=10_000,
    )  # fmt: skip
    print(f"[{current.name}] seeded in {time.monotonic() - began:.0f} s", flush=True)
    seeded = current.seeded
    convs = latency.Conversations(seeded)
    result: dict = {"stack": current.name}
    daphne = current.daphne(upstream)
    try:
        result.update(latency.run(daphne, upstream.url, convs, quick=quick))
        print(
            f"[{current.name}] latency done at {time.monotonic() - began:.0f} s",
            flush=True,
        )
        result["history"] = history.run(daphne.url, seeded, quick=quick)
        print(
            f"[{current.name}] history done at {time.monotonic() - began:.0f} s",
            flush=True,
        )
    finally:
        daphne.stop()
    result["start_path"] = startpath.run(current, upstream, convs, quick=quick)
    print(
        f"[{current.name}] start path done at {time.monotonic() - began:.0f} s",
        flush=True,
    )
    result["concurrency"] = []
    for slot, count in enumerate(levels):
        daphne = current.daphne(upstream)  # fresh process: memory from a clean start
        try:
            figures = asyncio.run(
                concurrency.level(daphne, upstream.url, seeded, count, slot)
            )
        finally:
            daphne.stop()
        result["concurrency"].append(figures)
        print(f"[{current.name}] {count} sockets: {figures['completed']} done, "
              f"errors {figures['errors']} "
              f"at {time.monotonic() - began:.0f} s", flush=True)  # fmt: skip
    stack.LOGS.mkdir(exist_ok=True)
    sql_log = stack.LOGS / f"writes-{current.name}.log"
    sql_log.write_text("")
    daphne = current.daphne(upstream, sql_log=sql_log)
    try:
        result["db_writes"] = dbwrites.run(
            daphne.ws_url, convs.key, convs, sql_log, quick=quick
        )
    finally:
        daphne.stop()
    print(f"[{current.name}] done in {time.monotonic() - began:.0f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="fewer sockets, replies and tokens"
    )
    parser.add_argument(
        "--stacks", default="memory,redis", help="memory, redis or both (default)"
    )
    parser.add_argument(
        "--levels", default="", help="socket counts, e.g. 100,250,500 (the default)"
    )
    parser.add_argument(
        "--daphne-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the Daphne processes (to measure a change)",
    )
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.daphne_env)
    levels = [int(n) for n in args.levels.split(",") if n] or (
        [20, 50] if args.quick else [50, 100, 250, 500]
    )
    makers = {"memory": stack.memory_stack, "redis": stack.redis_stack}
    stack.RESULTS.mkdir(exist_ok=True)
    stack.raise_file_limit()
    began = time.monotonic()
    upstream = stack.Upstream(slots=max(levels) + 10)
    try:
        results = [
            run_stack(makers[name], upstream, levels, quick=args.quick, env=env)
            for name in args.stacks.split(",")
        ]
    finally:
        upstream.stop()
    command = shlex.join([".venv/bin/python", "bench/run_all.py", *sys.argv[1:]])
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        report.write(
            results, command=command, seconds=time.monotonic() - began, load=load
        )
    )
    kobold_url = os.environ.get("KOBOLDCPP_BENCH_URL", "")
    if kobold_url and real_backend.answers(kobold_url):
        print(
            real_backend.main(kobold_url, f"KOBOLDCPP_BENCH_URL={kobold_url} {command}")
        )
    elif kobold_url:
        print(
            f"KOBOLDCPP_BENCH_URL={kobold_url} does not answer: no real-backend bench"
        )


if __name__ == "__main__":
    main()
