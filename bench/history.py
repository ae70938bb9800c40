"""Server time of the two history views on a 10,000-message conversation: the chat page
(session cookie) and the REST messages page (API key), timed from a local client."""

import math
import time

import httpx

from bench.stats import summary

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
        "page": page,
        "api_page": api,
        "api_last_page": api_last,
    }
