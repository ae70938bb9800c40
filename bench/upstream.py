"""The benchmarks' upstream: the fake KoboldCpp in its own process, each token stamped with
its send time (`t<index>:<time_ns> `) so both clients can measure per-token latency."""

import argparse
import re
import threading
import time

from kobold_fake.server import FakeKobold, Script

# The user's text says what to stream: "bench:<tokens>:<delay seconds>".
ORDER = re.compile(r"bench:(\d+):([0-9.]+)")
TOKEN = re.compile(r"t(\d+):(\d+) ")


def order_text(tokens: int, delay: float) -> str:
    """The message that makes the upstream stream `tokens` tokens, `delay` apart."""
    return f"bench:{tokens}:{delay}"


class StampingFake(FakeKobold):
    """Replaces each token's text, as it is sent, by its index and the wall clock, and
    keeps sub-millisecond paces that the event loop's timers cannot."""

    async def _pause(self, gen, seconds):
        # epoll sleeps whole milliseconds: at 0.5 ms a token, sleep only when a
        # millisecond ahead of the schedule, and send what is due back to back.
        if seconds is None or not 0 < seconds < 0.005:
            return await super()._pause(gen, seconds)
        now = time.monotonic()
        gen.due = max(getattr(gen, "due", now), now - 0.05) + seconds
        if gen.due - now >= 0.001:
            await super()._pause(gen, gen.due - now)

    async def _tokens(self, gen, script, limits, skip):
        index = 0
        async for item in super()._tokens(gen, script, limits, skip):
            if item[0] in ("token", "final") and item[1]:
                item = (item[0], f"t{index}:{time.time_ns()} ", *item[2:])
                index += 1
            yield item


def script_for(body: dict) -> Script:
    found = ORDER.findall(str(body.get("prompt") or body.get("messages") or ""))
    tokens, delay = (int(found[-1][0]), float(found[-1][1])) if found else (3, 0.0)
    # Placeholders the stamping replaces; trailing space keeps the tokens apart.
    return Script(tokens=["x "] * tokens, delay=delay)


def main() -> None:
    """Print `READY <port>`, then serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slots", type=int, default=1)
    args = parser.parse_args()
    server = StampingFake(slots=args.slots, multiuser=args.slots, max_context=1 << 20)
    server.responder = script_for
    server.start()
    print(f"READY {server.port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
