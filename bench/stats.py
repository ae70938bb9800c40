"""Percentiles of latency samples, the side-by-side difference of two paths, and the
CPU time a process spent per token and per frame."""

import numpy as np
import psutil


def summary(samples: list[float]) -> dict:
    """p50/p90/p99/max of `samples` in ms (None when there are none)."""
    if not samples:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}
    values = np.asarray(samples, dtype=float)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "n": int(values.size),
        "p50": round(float(p50), 3),
        "p90": round(float(p90), 3),
        "p99": round(float(p99), 3),
        "max": round(float(values.max()), 3),
    }


def added(app: dict, direct: dict) -> dict:
    """What the app adds at each percentile, in ms."""
    return {
        key: round(app[key] - direct[key], 3)
        for key in ("p50", "p90", "p99")
        if app.get(key) is not None and direct.get(key) is not None
    }


def compare(app_samples: list[float], direct_samples: list[float]) -> dict:
    app, direct = summary(app_samples), summary(direct_samples)
    return {"app": app, "direct": direct, "added": added(app, direct)}


def latencies_against(app: list, direct: list) -> dict:
    """First-token and per-token latency of the app's traces against the direct ones."""
    return {
        "ttft_ms": compare(
            [t.ttft_ms for t in app if t.ttft_ms is not None],
            [t.ttft_ms for t in direct if t.ttft_ms is not None],
        ),
        "token_latency_ms": compare(
            [ms for t in app for ms in t.latencies_ms],
            [ms for t in direct for ms in t.latencies_ms],
        ),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (all its threads)."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def cpu_cost(seconds: float, traces: list) -> dict:
    """`seconds` of the app's CPU spread over the tokens and token frames the clients
    received: a cost that compares across machines, unlike latency under load."""
    tokens = sum(len(t.indexes) for t in traces)
    frames = sum(t.frames for t in traces)
    return {
        "cpu_s": round(seconds, 3),
        "tokens": tokens,
        "frames": frames,
        "us_per_token": round(seconds * 1e6 / tokens, 1) if tokens else None,
        "us_per_frame": round(seconds * 1e6 / frames, 1) if frames else None,
    }
