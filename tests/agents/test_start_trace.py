"""The start path's timing marks: one log line per traced reply when on, nothing when off."""

import asyncio
import json
import logging

from agents import start_trace


def test_marks_are_logged_once_when_the_first_token_frame_is_out(monkeypatch, caplog):
    """On, a trace begun in one context and carried into a job's context is logged
    once, at its `token` mark, with every step's first mark in µs from the start."""
    monkeypatch.setattr(start_trace, "ENABLED", True)
    caplog.set_level(logging.WARNING, logger="agents.start_trace")

    async def job():
        start_trace.mark("queue_turn")
        start_trace.mark("token")
        start_trace.mark("token")  # a later frame: the trace is already out

    async def socket():
        start_trace.begin()
        start_trace.mark("parsed")
        start_trace.mark("parsed")  # the first mark of a name wins
        await asyncio.create_task(job(), context=start_trace.job_context())

    asyncio.run(socket())
    lines = [r.getMessage() for r in caplog.records if "start-trace" in r.getMessage()]
    assert len(lines) == 1
    marks = json.loads(lines[0].split("start-trace ", 1)[1])["us"]
    assert list(marks) == ["received", "parsed", "queue_turn", "token"]
    assert marks["received"] == 0 <= marks["parsed"] <= marks["token"]


def test_marks_do_nothing_when_off(monkeypatch, caplog):
    """Off (the default), no trace begins, none reaches a job, nothing is logged."""
    monkeypatch.setattr(start_trace, "ENABLED", False)
    caplog.set_level(logging.WARNING, logger="agents.start_trace")
    start_trace.begin()
    start_trace.mark("token")
    assert start_trace.job_context().run(start_trace._current.get) is None
    assert not caplog.records
