"""Timing marks on the way from a chat message to its first token frame, for the
benchmark's breakdown (bench/startpath.py). Off unless KOBOLDCHAT_TRACE_START=1.

The socket begins a trace when a frame comes in; each step marks it (the first mark of a
name wins) through a context variable, which follows the message into the sync thread
and, by `job_context()`, into its reply job. When the first token frame has gone out,
the trace is logged as one `start-trace {json}` line. Off, every call returns at once.
"""

import contextvars
import json
import logging
import os
import time

ENABLED = os.environ.get("KOBOLDCHAT_TRACE_START") == "1"
LAST = "token"  # the mark that ends a trace: the first token frame went out

log = logging.getLogger(__name__)
_current: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "start_trace", default=None
)


def begin() -> None:
    """A frame came in: what follows in this context belongs to a new trace."""
    if ENABLED:
        _current.set({"wall_ns": time.time_ns(), "received": time.perf_counter_ns()})


def mark(name: str) -> None:
    """Step `name` of the current trace is done (nothing without a trace)."""
    if not ENABLED:
        return
    trace = _current.get()
    if trace is None or LAST in trace or name in trace:
        return
    trace[name] = time.perf_counter_ns()
    if name == LAST:
        marks = {k: v for k, v in trace.items() if k != "wall_ns"}
        start = marks["received"]
        # WARNING: the setting asked for these lines, whatever LOG_LEVEL says.
        log.warning(
            "start-trace %s",
            json.dumps(
                {
                    "wall_ns": trace["wall_ns"],
                    "us": {k: (v - start) // 1000 for k, v in marks.items()},
                }
            ),
        )


def job_context() -> contextvars.Context:
    """A fresh context for a reply job, carrying only the trace of its message."""
    context = contextvars.Context()
    if ENABLED:
        context.run(_current.set, _current.get())
    return context
