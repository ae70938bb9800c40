"""The life of a Daphne server process around its replies. Once it runs: the reply reaper
starts, so that replies left by a dead process are taken over before anyone connects.
On SIGTERM or SIGINT: a graceful stop (chat.replies.drain: running replies may finish
for CHAT_DRAIN_SECONDS, the rest are handed over), then every socket is closed with 4503
(the page reconnects at once, to another process or the restarted one), then Daphne
stops. A second signal (a second later) hands the running replies over at once."""

import asyncio
import logging
import signal
import sys
import time

from django.conf import settings

log = logging.getLogger(__name__)

_hurry = asyncio.Event()
_stopping: list[float] = []  # when the stop began
_tasks: set[asyncio.Task] = set()


def install() -> None:
    """Under Daphne (whose Twisted reactor is imported before the application), hook
    into its start and take over its stop signals; elsewhere, nothing."""
    if "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import reactor

    # After Twisted installed its own handlers; the loop runs by the time of the call.
    reactor.callWhenRunning(lambda: reactor.callLater(0, _running, reactor))


def _running(reactor) -> None:
    from chat.replies.reaper import ensure_reaper

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(
            signum, lambda n, _: loop.call_soon_threadsafe(_on_signal, n, reactor)
        )
    ensure_reaper()


def _on_signal(signum: int, reactor) -> None:
    name = signal.Signals(signum).name
    if _stopping and time.monotonic() - _stopping[0] < 1.0:
        return  # the same stop twice (Ctrl+C reaches `make run`'s launcher and Daphne)
    if _stopping:
        log.warning("%s again: handing the running replies over now", name)
        _hurry.set()
        return
    log.warning(
        "%s: stopping, replies may finish for %s s", name, settings.CHAT_DRAIN_SECONDS
    )
    _stopping.append(time.monotonic())
    _tasks.add(asyncio.get_running_loop().create_task(_stop(reactor)))


async def _stop(reactor) -> None:
    from chat.replies import drain
    from chat.socket.consumer import close_all

    try:
        handed = await drain.drain(settings.CHAT_DRAIN_SECONDS, hurry=_hurry)
        closed = await close_all()
        log.warning(
            "stopped: %s replies handed over, %s sockets closed", handed, closed
        )
    except Exception:
        log.exception("the graceful stop failed; stopping anyway")
    finally:
        reactor.stop()
