"""The results of a run: JSON (git-ignored), the latency-vs-concurrency plot, and the
markdown table printed and kept in bench/results/latest.md."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.stack import RESULTS  # noqa: E402

TARGETS = {"p50": 2.0, "p99": 10.0}
CPU_TARGET_US = 30  # per relayed token, at ~2,000 tokens/s aggregate
MEMORY_TARGET_KB = 100  # per socket, at the peak while streaming


def _ms(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def _cpu_row(label: str, cpu: dict, tokens_per_s, direct: dict | None = None) -> str:
    per_token = cpu["us_per_token"]
    verdict = "–" if per_token is None else (
        "within" if per_token <= CPU_TARGET_US else "OVER"
    )  # fmt: skip
    reader = (
        f"; a direct reader: {direct['us_per_token']} µs/token" if direct else ""
    )  # fmt: skip
    return (
        f"| {label}: app CPU per token / per frame | "
        f"{per_token} / {cpu['us_per_frame']} µs ({cpu['cpu_s']} s for "
        f"{cpu['tokens']} tokens in {cpu['frames']} frames, ~{tokens_per_s} tokens/s"
        f"{reader}) | target ≤ {CPU_TARGET_US} µs/token at ~2,000 tokens/s: {verdict} |"
    )


def marginal_cpu(relay: dict, burst: dict) -> dict:
    """A reply's fixed CPU (the 40-token replies: start, end, stores) and the CPU of
    each further token at 2,000 tokens/s: what the fast replies spent beyond it."""
    fixed = relay["cpu"]["cpu_s"] / max(1, relay["replies"])
    fast = burst["cpu"]["cpu_s"] / max(1, burst["replies"])
    more = burst["tokens"] - relay["tokens"]
    return {
        "fixed_ms": round(fixed * 1000, 1),
        "us_per_token": round((fast - fixed) * 1e6 / more, 1) if more > 0 else None,
    }


def _marginal_row(relay: dict, burst: dict) -> str:
    cost = marginal_cpu(relay, burst)
    per_token = cost["us_per_token"]
    verdict = "–" if per_token is None else (
        "within" if per_token <= CPU_TARGET_US else "OVER"
    )  # fmt: skip
    return (
        f"| 2,000 tokens/s: app CPU per token beyond a reply's fixed cost | "
        f"{per_token} µs (fixed: {cost['fixed_ms']} ms a reply) | "
        f"target ≤ {CPU_TARGET_US} µs/token: {verdict} |"
    )


def start_path_table(start: dict) -> str:
    """Where the added time to first token goes, step by step (p50 of each)."""
    rows = [
        f"First token, step by step: p50 over {start['replies']} replies of a Daphne "
        "with `KOBOLDCHAT_TRACE_START=1`; client TTFT p50 "
        f"{_ms(start['ttft_app_ms'])} ms through the app, "
        f"{_ms(start['ttft_direct_ms'])} ms direct.",
        "",
        "| step | p50 ms |",
        "| --- | --- |",
    ]
    rows += [f"| {row['step']} | {_ms3(row['ms'])} |" for row in start["steps"]]
    total = sum(row["ms"] or 0 for row in start["steps"])
    rows.append(f"| sum of the steps | {_ms3(total)} |")
    return "\n".join(rows)


def _ms3(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def _latency_rows(name: str, figures: dict) -> list[str]:
    ttft, tok = figures["ttft_ms"], figures["token_latency_ms"]
    return [
        f"| {name}: time to first token p50 (direct → app) | "
        f"{_ms(ttft['direct']['p50'])} → {_ms(ttft['app']['p50'])} ms | "
        f"+{_ms(ttft['added'].get('p50'))} ms |",
        f"| {name}: per-token latency p50 (direct → app) | "
        f"{_ms(tok['direct']['p50'])} → {_ms(tok['app']['p50'])} ms | "
        f"+{_ms(tok['added'].get('p50'))} ms (target ≤ 2) |",
        f"| {name}: per-token latency p99 (direct → app) | "
        f"{_ms(tok['direct']['p99'])} → {_ms(tok['app']['p99'])} ms | "
        f"+{_ms(tok['added'].get('p99'))} ms (target ≤ 10) |",
    ]


def stack_table(result: dict) -> str:
    relay, burst = result["relay"], result["throughput"]
    rows = ["| figure | measured | added by the app / verdict |", "| --- | --- | --- |"]
    rows += _latency_rows(f"{relay['tokens']} tokens at 100/s", relay)
    rows.append(
        f"| {burst['tokens']} tokens at 2,000/s: complete and in order | "
        f"{burst['complete']['app']}/{burst['replies']} "
        f"(in order: {burst['in_order']}), frames/reply "
        f"{burst['frames_per_reply']['app']} vs {burst['frames_per_reply']['direct']} | "
        f"tokens/s app {burst['tokens_per_s']['app']} |"
    )
    rows += _latency_rows("2,000 tokens/s", burst)
    rows.append(
        _cpu_row(
            "2,000 tokens/s, one reply", burst["cpu"], "2,000", burst["direct_cpu"]
        )
    )
    rows.append(
        _cpu_row("100 tokens/s, one reply", relay["cpu"], "100", relay["direct_cpu"])
    )
    rows.append(_marginal_row(relay, burst))
    for level in result["concurrency"]:
        tok = level["token_latency_ms"]
        rows.append(
            f"| {level['sockets']} sockets: completed, errors | "
            f"{level['completed']}/{level['sockets']} (direct "
            f"{level['direct_completed']}) in {level['wall_s']} s | "
            f"errors {level['errors'] or 'none'} |"
        )
        rows.append(
            f"| {level['sockets']} sockets: per-token p50 / p99 (direct → app) | "
            f"{_ms(tok['direct']['p50'])} → {_ms(tok['app']['p50'])} / "
            f"{_ms(tok['direct']['p99'])} → {_ms(tok['app']['p99'])} ms | "
            f"+{_ms(tok['added'].get('p50'))} / +{_ms(tok['added'].get('p99'))} ms |"
        )
        rows.append(
            _cpu_row(f"{level['sockets']} sockets", level["cpu"], level["tokens_per_s"])
        )
        streaming = level["kb_per_streaming_socket"]
        rows.append(
            f"| {level['sockets']} sockets: RSS 1 → N connected (peak streaming) | "
            f"{level['rss_1_mb']} → {level['rss_n_mb']} MB ({level['rss_peak_mb']} MB) | "
            f"{level['kb_per_socket']} KB/socket connected, {streaming} KB streaming "
            f"(target ≤ {MEMORY_TARGET_KB}: "
            f"{'within' if streaming <= MEMORY_TARGET_KB else 'OVER'}) |"
        )
    for row in result["db_writes"]:
        rows.append(
            f"| DB writes, {row['tokens']}-token reply ({row['reply_s']} s) | "
            f"{row['writes']} ({row['message_updates']} message updates) | "
            f"+{row['extra_writes']} over 1 token; "
            f"{'within' if row['within_bound'] else 'OVER'} 1/s |"
        )
    history = result["history"]
    views = (
        ("chat page", "page"),
        ("API messages, first page", "api_page"),
        ("API messages, last page", "api_last_page"),
    )
    for label, key in views:
        view = history[key]
        rows.append(
            f"| {label}, {history['messages']} messages (HTTP {view['status']}, "
            f"{view['bytes'] // 1024} KB) | p50 {_ms(view['ms']['p50'])} ms, "
            f"max {_ms(view['ms']['max'])} ms | target ≤ 50 ms |"
        )
    return "\n".join(rows)


def plot(results: list[dict]) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for result in results:
        points = [(1, result["relay"]["token_latency_ms"]["added"])]
        points += [
            (level["sockets"], level["token_latency_ms"]["added"])
            for level in result["concurrency"]
        ]
        xs = [x for x, _ in points]
        for key, style in (("p50", "o-"), ("p99", "s--")):
            ys = [added.get(key) for _, added in points]
            ax.plot(xs, ys, style, label=f"{result['stack']} {key}")
    for key, value in TARGETS.items():
        ax.axhline(value, color="grey", linewidth=0.8, linestyle=":")
        ax.annotate(f"target {key}", (1, value), fontsize=8, color="grey")
    ax.set_xscale("log")
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("sockets streaming at once (1 = one reply at a time)")
    ax.set_ylabel("latency added per token vs direct SSE (ms)")
    ax.set_title("koboldchat relay overhead against concurrency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "latency_vs_concurrency.png", dpi=120)
    plt.close(fig)


def write(results: list[dict], *, command: str, seconds: float, load: str) -> str:
    """Write everything; return the markdown."""
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    plot(results)
    parts = [
        "# Benchmark results",
        "",
        f"Command: `{command}` ({seconds:.0f} s on this 2-core machine, load average "
        f"{load} at the end: other work shares the CPU). "
        "Plot: `latency_vs_concurrency.png`.",
    ]
    for result in results:
        parts += ["", f"## {result['stack']}", "", stack_table(result)]
        if "start_path" in result:
            parts += ["", start_path_table(result["start_path"])]
    markdown = "\n".join(parts) + "\n"
    (RESULTS / "latest.md").write_text(markdown)
    return markdown
