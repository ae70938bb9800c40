"""What the OpenAI-compatible endpoint adds: time to first token and per-token latency of
a streamed /v1/chat/completions through Daphne + the app, against the same stamping
upstream read directly. `python bench/openai_gateway.py [--replies N]` prints the table."""

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import clients, stack  # noqa: E402
from bench.clients import Trace  # noqa: E402
from bench.stats import latencies_against  # noqa: E402
from bench.upstream import order_text  # noqa: E402

TOKENS, DELAY = 40, 0.01  # 100 tokens/s, the pace of a small local model


async def gateway_reply(
    client: httpx.AsyncClient, base_url: str, key: str, tokens: int, delay: float
) -> Trace:
    """One streamed chat completion, its content deltas timed as they arrive."""
    trace = Trace(expected=tokens)
    body = {
        "model": "koboldcpp",
        "messages": [{"role": "user", "content": order_text(tokens, delay)}],
        "max_tokens": tokens,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {key}"}
    trace.sent_ns = time.time_ns()
    url = f"{base_url}/v1/chat/completions"
    async with client.stream("POST", url, json=body, headers=headers) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            now = time.time_ns()
            chunk = json.loads(line[6:])
            if "error" in chunk:
                trace.errors.append(chunk["error"]["code"])
                continue
            choice = chunk["choices"][0]
            if choice["delta"].get("content"):
                trace.frames += 1
                trace.on_text(choice["delta"]["content"], now)
            trace.status = choice["finish_reason"] or trace.status
    return trace


async def pairs(app_url: str, upstream_url: str, key: str, replies: int) -> dict:
    app, direct = [], []
    async with clients.direct_client(2) as client:
        for _ in range(replies):
            direct.append(
                await clients.direct_reply(client, upstream_url, TOKENS, DELAY)
            )
            app.append(await gateway_reply(client, app_url, key, TOKENS, DELAY))
    return {
        "replies": replies,
        "complete": {
            "gateway": sum(t.complete for t in app),
            "direct": sum(t.complete for t in direct),
        },
        **latencies_against(app, direct),
    }


def print_table(figures: dict) -> None:
    print(
        f"{figures['replies']} replies of {TOKENS} tokens at {1 / DELAY:.0f} tokens/s; "
        f"complete: {figures['complete']}"
    )
    print(
        f"{'':18} {'direct p50':>11} {'/v1 p50':>9} {'added p50':>10} {'added p90':>10}"
    )
    for name in ("ttft_ms", "token_latency_ms"):
        row = figures[name]
        print(
            f"{name:18} {row['direct']['p50']:>11} {row['app']['p50']:>9} "
            f"{row['added'].get('p50'):>10} {row['added'].get('p90'):>10}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replies", type=int, default=10)
    args = parser.parse_args()
    upstream = stack.Upstream(slots=1)
    try:
        prepared = stack.prepare(
            stack.memory_stack(), users=1, conversations=1, solo=1, history=0
        )
        key = prepared.seeded["users"][0]["key"]
        daphne = prepared.daphne(upstream)
        try:
            figures = asyncio.run(pairs(daphne.url, upstream.url, key, args.replies))
        finally:
            daphne.stop()
    finally:
        upstream.stop()
    print_table(figures)


if __name__ == "__main__":
    main()
