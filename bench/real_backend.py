"""The app against a real KoboldCpp: time to first token with intents `auto` and
`heuristic` and straight from KoboldCpp with the same prompt; and prompt processing in a
40-turn conversation that outgrows the context. `make bench` runs it when
KOBOLDCPP_BENCH_URL answers; alone:

    .venv/bin/python bench/real_backend.py --url http://127.0.0.1:5001
"""

import argparse
import asyncio
import json
import os
import shlex
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import django
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "koboldchat.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
django.setup()  # the agents code builds the direct requests

from agents.events import ChatTurn  # noqa: E402
from agents.intents import classify  # noqa: E402
from agents.llm_service import LLMService  # noqa: E402
from agents.orchestrator import Orchestrator  # noqa: E402
from agents.profiles import HISTORY_TURNS, ReplyOverrides, profile_for  # noqa: E402
from agents.request_body import generation_request, new_genkey  # noqa: E402
from bench import clients, stack  # noqa: E402
from bench.stats import summary  # noqa: E402

REPLY_TOKENS = 16  # time to first token does not depend on the reply's length
TURN_TOKENS = 96  # the long conversation's replies: long enough to fill the context
TURNS = 40
MESSAGES = [
    "Hello!", "Bonjour !", "Good morning, how are you today?", "Salut, ça va ?",
    "What is the capital of Canada?", "Quelle est la capitale de l'Australie ?",
    "How do airplanes stay in the air?", "Pourquoi la mer est-elle salée ?",
    "Can you explain what a black hole is?",
    "Comment fonctionne un moteur électrique ?",
    "Write a short poem about the sea.", "Écris un petit poème sur la pluie.",
    "Tell me a story about a brave little mouse.",
    "Raconte-moi une histoire de dragon.",
    "Give me three ideas for a birthday party.",
    "Quels sont les bienfaits de la marche à pied ?",
    "Thanks a lot!", "Merci beaucoup !",
    "What should I cook tonight with rice and eggs?",
    "Invente une chanson sur un chat gourmand.",
]  # fmt: skip
TOPICS = [
    "bread baking", "the Roman roads", "bees", "tides", "the printing press",
    "volcanoes", "chess openings", "rainbows", "the Silk Road", "coral reefs",
    "glaciers", "the steam engine", "owls", "compost", "the Moon landing",
    "lighthouses", "penguins", "sourdough", "the telegraph", "deserts",
]  # fmt: skip
TURN_TEXT = (
    "Let us talk about {topic}. How does it work, what are its most important parts, "
    "how did people first learn about it, and why does it still matter to ordinary "
    "people today? Please answer in a few clear sentences."
)


@dataclass
class Reply:
    """One reply as a WebSocket client saw it: its first token's delay, and its `start`
    and `end` frames."""

    ttft_ms: float | None = None
    start: dict = field(default_factory=dict)
    end: dict = field(default_factory=dict)


async def ask(socket, conversation_id: int, text: str) -> Reply:
    """Send `text` on an open socket and read the reply's frames up to `end`."""
    reply, sent = Reply(), time.perf_counter()
    frame = {"type": "message", "text": text, "conversation_id": conversation_id}
    await socket.send(json.dumps(frame))
    async for raw in socket:
        frame = json.loads(raw)
        if frame["type"] == "token" and reply.ttft_ms is None:
            reply.ttft_ms = (time.perf_counter() - sent) * 1000
        elif frame["type"] in ("start", "end"):
            setattr(reply, frame["type"], frame)
            if frame["type"] == "end":
                return reply
    raise RuntimeError("the socket closed before the reply ended")


class KoboldServer:
    """The real KoboldCpp read directly, and the requests the app sends it for a
    message, built by the agents code itself (the orchestrator's prompt, a profile,
    the one body builder). An async context manager, in the benchmark's loop."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.app = Orchestrator(LLMService(base_url=self.url, api="native"))
        self.http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> "KoboldServer":
        self.http = clients.direct_client(2)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.aclose()

    async def perf(self) -> dict:
        return (await self.http.get(f"{self.url}/api/extra/perf")).json()

    async def reset_cache(self) -> None:
        """Once no other client's generation runs, a one-token generation of an
        unrelated prompt: the next prompt is read from its start, as a new
        conversation's is, whichever path asked before."""
        while not (await self.perf())["idle"]:
            await asyncio.sleep(0.05)
        body = {"prompt": f"~{uuid.uuid4().hex}", "max_length": 1, "genkey": "reset"}
        await self.http.post(f"{self.url}/api/v1/generate", json=body)

    async def app_prompt(self, history: list, text: str, max_tokens: int):
        """The prompt start the app builds for `text` after `history`."""
        overrides = ReplyOverrides(max_tokens=max_tokens)
        return await self.app.prompt_for(history, text, overrides), overrides

    async def direct_ttft_ms(self, text: str) -> float | None:
        """The app's reply request for `text` in a new conversation (the heuristic's
        intent), streamed directly: the ms until its first non-empty token."""
        service = self.app.service
        await service.resolve_template()
        prompt, overrides = await self.app_prompt([], text, REPLY_TOKENS)
        profile = profile_for(classify(text).intent, overrides)
        path, body = generation_request(
            "native", service.template, prompt.ending_with(profile.instructions),
            profile.generation_settings(), genkey=new_genkey(), stream=True,
            max_context=service.max_context,
        )  # fmt: skip
        sent, first = time.perf_counter(), None
        async with self.http.stream("POST", self.url + path, json=body) as response:
            async for line in response.aiter_lines():
                if first is None and line.startswith("data:"):
                    if json.loads(line[5:]).get("token"):
                        first = time.perf_counter()
        return None if first is None else (first - sent) * 1000


async def first_tokens(kobold: KoboldServer, sockets: dict, conversations) -> dict:
    """Each message through the app with `auto`, with `heuristic`, and directly, in an
    order that turns with each message, every one from a cold prompt cache."""
    ttft: dict[str, list] = {"auto": [], "heuristic": [], "direct": []}
    sources: Counter[str] = Counter()
    for n, text in enumerate(MESSAGES):
        paths = list(ttft)
        for path in paths[n % 3 :] + paths[: n % 3]:
            await kobold.reset_cache()
            if path == "direct":
                ttft[path].append(await kobold.direct_ttft_ms(text))
                continue
            reply = await ask(sockets[path], next(conversations), text)
            ttft[path].append(reply.ttft_ms)
            if path == "auto":
                sources[reply.start["intent_source"]] += 1
    return {
        "messages": len(MESSAGES),
        "ttft_ms": {path: summary([v for v in ms if v]) for path, ms in ttft.items()},
        "auto_intent_sources": dict(sources),
    }


async def long_conversation(kobold: KoboldServer, socket, conversation_id: int) -> dict:
    """TURNS exchanges in one conversation; per reply its time to first token and
    KoboldCpp's prompt speed, split by whether the app had to drop turns to fit."""
    history: list[ChatTurn] = []
    rows: dict[str, list[dict]] = {"fits": [], "past": []}
    for n in range(TURNS):
        text = TURN_TEXT.format(topic=TOPICS[n % len(TOPICS)])
        reply = await ask(socket, conversation_id, text)
        prompt, _ = await kobold.app_prompt(history, text, TURN_TOKENS)
        trimmed = prompt.dropped > max(0, len(history) - HISTORY_TURNS)
        rows["past" if trimmed else "fits"].append(
            {
                "turn": n + 1,
                "ttft_ms": reply.ttft_ms,
                "process_ms_per_token": (await kobold.perf())["last_process"],
                "prompt_tokens": reply.end["metrics"]["prompt_tokens"] or 0,
                "status": reply.end["status"],
            }
        )
        history += [ChatTurn("user", text), ChatTurn("assistant", reply.end["content"])]
    figures: dict = {
        "turns": TURNS,
        "max_context": await kobold.app.prompts.max_context(),
    }
    for kind, found in rows.items():
        figures[kind] = {
            "turns": [r["turn"] for r in found],
            "ttft_ms": summary([r["ttft_ms"] for r in found if r["ttft_ms"]]),
            "process_ms_per_token": summary([r["process_ms_per_token"] for r in found]),
            "prompt_tokens_max": max((r["prompt_tokens"] for r in found), default=0),
            "not_complete": [r["turn"] for r in found if r["status"] != "complete"],
        }
    return figures


async def measure(kobold: KoboldServer, daphnes: dict, seeded: dict) -> dict:
    user = seeded["users"][0]
    ids = iter(user["conversations"])
    headers = {"Authorization": f"Bearer {user['key']}"}
    async with httpx.AsyncClient(base_url=daphnes["auto"].url, headers=headers) as api:
        for n, conversation_id in enumerate(user["conversations"]):
            tokens = TURN_TOKENS if n == 0 else REPLY_TOKENS  # the seed's limit is huge
            answer = await api.patch(
                f"/api/conversations/{conversation_id}", json={"max_tokens": tokens}
            )
            answer.raise_for_status()
    long_id = next(ids)
    sockets = {
        mode: await clients.ws_connect(daphne.ws_url, user["key"])
        for mode, daphne in daphnes.items()
    }
    try:
        async with kobold:
            for socket in sockets.values():  # each process learns the backend once
                await ask(socket, next(ids), "Hi!")
            result = {"first_token": await first_tokens(kobold, sockets, ids)}
            result["long_conversation"] = await long_conversation(
                kobold, sockets["heuristic"], long_id
            )
    finally:
        for socket in sockets.values():
            await socket.close()
    return result


def run(url: str) -> dict:
    """Two Daphne processes (intents auto and heuristic) on one SQLite stack, both
    against the KoboldCpp at `url`; the figures of both parts."""
    made = stack.prepare(
        stack.memory_stack(), users=1, conversations=1, solo=len(MESSAGES) * 2 + 4,
        history=0,
    )  # fmt: skip
    kobold = KoboldServer(url)  # also the `upstream` the Daphne processes point at
    slow = {"LLM_FIRST_TOKEN_TIMEOUT": "120", "LLM_MAX_SILENCE": "30"}
    daphnes = {}
    try:
        for mode in ("auto", "heuristic"):
            daphnes[mode] = made.daphne(kobold, INTENT_DETECTION=mode, **slow)
        return asyncio.run(measure(kobold, daphnes, made.seeded))
    finally:
        for daphne in daphnes.values():
            daphne.stop()


def _ms(value) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def _ratio(a, b) -> str:
    return "–" if a is None or not b else f"{a / b:.2f}"


def table(result: dict) -> str:
    """The markdown of the figures: the three checked against targets first."""
    ttft, long = result["first_token"]["ttft_ms"], result["long_conversation"]
    auto, heuristic, direct = (ttft[k]["p50"] for k in ("auto", "heuristic", "direct"))
    added = None if heuristic is None or direct is None else heuristic - direct
    fits, past = long["fits"]["ttft_ms"]["p50"], long["past"]["ttft_ms"]["p50"]
    rows = [
        "| figure | measured | target |",
        "| --- | --- | --- |",
        f"| TTFT p50 auto / heuristic | {_ratio(auto, heuristic)} | ≤ 1.3 |",
        f"| TTFT p50 app (heuristic) − direct | {_ms(added)} | ≤ 20 ms |",
        f"| TTFT p50 past the context / fitting | {_ratio(past, fits)} | ≤ 2 |",
        "",
        "| path | replies | TTFT p50 | TTFT p90 |",
        "| --- | --- | --- | --- |",
        *(
            f"| {path} | {f['n']} | {_ms(f['p50'])} | {_ms(f['p90'])} |"
            for path, f in ttft.items()
        ),
        "",
        f"auto's intent sources: {result['first_token']['auto_intent_sources']}",
        "",
        "| 40-turn conversation | replies | TTFT p50 / p90 | prompt ms/token p50 "
        "| prompt tokens max | not complete |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind in ("fits", "past"):
        f = long[kind]
        rows.append(
            f"| {kind} | {len(f['turns'])} | {_ms(f['ttft_ms']['p50'])} / "
            f"{_ms(f['ttft_ms']['p90'])} | {f['process_ms_per_token']['p50']} | "
            f"{f['prompt_tokens_max']} | {f['not_complete'] or 'none'} |"
        )
    trimmed = long["past"]["turns"]
    rows.append(
        f"\nContext {long['max_context']} tokens; the app trimmed the history from "
        f"turn {trimmed[0] if trimmed else '–'} of {long['turns']} on."
    )
    return "\n".join(rows)


def main(url: str, command: str) -> str:
    """Run everything against `url`; write bench/results/real_backend.json and .md and
    return the markdown."""
    began = time.monotonic()
    version = httpx.get(f"{url}/api/extra/version", timeout=5).json()["version"]
    model = httpx.get(f"{url}/api/v1/model", timeout=5).json()["result"]
    result = {"server": f"KoboldCpp {version}, {model}", **run(url)}
    stack.RESULTS.mkdir(exist_ok=True)
    (stack.RESULTS / "real_backend.json").write_text(json.dumps(result, indent=2))
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    text = (
        "# The app against a real KoboldCpp\n\n"
        f"Command: `{command}` ({time.monotonic() - began:.0f} s on this 2-core "
        f"machine, load average {load} at the end). {result['server']}, CPU only.\n\n"
        f"{table(result)}\n"
    )
    (stack.RESULTS / "real_backend.md").write_text(text)
    return text


def answers(url: str) -> bool:
    """True when a KoboldCpp answers at `url`."""
    try:
        version = httpx.get(f"{url}/api/extra/version", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    return isinstance(version, dict) and version.get("result") == "KoboldCpp"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--url", default=os.environ.get("KOBOLDCPP_BENCH_URL", "http://127.0.0.1:5001")
    )
    url = parser.parse_args().url.rstrip("/")
    if not answers(url):
        sys.exit(f"no KoboldCpp answers at {url}")
    print(main(url, shlex.join([".venv/bin/python", *sys.argv])))
