"""Server time of the two history views on a 10,000-message conversation with 1,000
alternative replies (bench/seed.py): the chat page (session cookie) and the REST messages
page (API key), timed from a local client. Run alone, on both stacks:
`.venv/bin/python bench/history.py` (`make bench` runs it too)."""

import math
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stats import summary  # noqa: E402

PAGE_SIZE = 20  # the API's default


def _timed(client: httpx.Client, url: str, repeats: int) -> dict:
    client.get(url)  # warm-up: templates, caches, connection
    samples, sizes, status = [], [], 0
    for _ in range(repeats):
        began = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - began) * 1000)
        sizes.append(len(response.content))
        status = response.status_code
    return {"status": status, "bytes": max(sizes), "ms": summary(samples)}


def run(base_url: str, seeded: dict, *, quick: bool) -> dict:
    history = seeded["history"]
    repeats = 3 if quick else 5
    conversation = history["conversation"]
    with httpx.Client(
        base_url=base_url, cookies={"sessionid": history["session"]}, timeout=120
    ) as client:
        page = _timed(client, f"/?c={conversation}", repeats)
    with httpx.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {history['key']}"},
        timeout=120,
    ) as client:
        url = f"/api/conversations/{conversation}/messages"
        api = _timed(client, url, repeats)
        # The page a client wants first is the last one: the latest messages.
        last = math.ceil(history["messages"] / PAGE_SIZE)
        api_last = _timed(client, f"{url}?page={last}&page_size={PAGE_SIZE}", repeats)
    return {
        "messages": history["messages"],
        "branches": history.get("branches", 0),
        "page": page,
        "api_page": api,
        "api_last_page": api_last,
    }


def main() -> None:
    from bench import stack

    upstream = stack.Upstream(slots=4)
    try:
        for make in (stack.memory_stack, stack.redis_stack):
            current = stack.prepare(
                make(), users=1, conversations=1, solo=1, history=10_000
            )
            daphne = current.daphne(upstream)
            try:
                figures = run(daphne.url, current.seeded, quick=False)
            finally:
                daphne.stop()
            print(f"{current.name}: {figures['messages']} messages on the path, "
                  f"{figures['branches']} alternatives")  # fmt: skip
            for key in ("page", "api_page", "api_last_page"):
                view = figures[key]
                print(f"  {key}: HTTP {view['status']}, p50 {view['ms']['p50']:.1f} ms, "
                      f"max {view['ms']['max']:.1f} ms")  # fmt: skip
    finally:
        upstream.stop()


if __name__ == "__main__":
    main()
