"""Continuing a reply: how the new text joins the text already there, and the reply's
metrics over all its generations (a continued reply is one reply, not its last part)."""

import time
import unicodedata

NO_SPACE_BEFORE = set(",.;:!?…)]}»”’%")
NO_SPACE_AFTER = set("([{«“‘-/\"'")


def separator(before: str, text: str) -> str:
    """What goes between the reply's text `before` and its continuation `text`: the
    model starts a new turn, so "Her sails" + "As I gaze" needs a space."""
    if not before or not text or before[-1].isspace() or text[0].isspace():
        return ""
    if text[0] in NO_SPACE_BEFORE or before[-1] in NO_SPACE_AFTER:
        return ""
    if unicodedata.east_asian_width(before[-1]) in "WF":  # no spaces between CJK
        return ""
    return " "


def generation_metrics(
    *, started_at, first_token_at, thinking, finished, earlier: dict
) -> tuple[dict, tuple | None]:
    """The metrics of the generation that ends now (monotonic times; `thinking`: its
    first and last reasoning), merged with its `earlier` ones; and its (prompt,
    completion) tokens when known."""
    fields = {"duration_ms": int((time.monotonic() - started_at) * 1000)}
    if first_token_at is not None:
        fields["ttft_ms"] = int((first_token_at - started_at) * 1000)
    if thinking is not None:
        fields["reasoning_ms"] = int((thinking[1] - thinking[0]) * 1000)
    usage = None
    if finished is not None:
        usage = (finished.prompt_tokens, finished.completion_tokens)
        fields["prompt_tokens"], fields["completion_tokens"] = usage
    fields.update(merged_metrics(earlier, fields))
    return fields, usage


def merged_metrics(earlier: dict, latest: dict) -> dict:
    """The fields of `latest` (this generation's metrics) that change once the reply's
    `earlier` generations count too: the tokens add up, the first token is the reply's
    first, and the time spent reading the continuation's prompt is not generation time
    (so tokens per second stay the model's speed). Tokens of earlier generations that
    are not known make the total unknown, never just the last part."""
    if not earlier:  # not a continuation
        return {}
    merged = {}
    if latest.get("completion_tokens") is not None:
        known = earlier.get("completion_tokens")
        merged["completion_tokens"] = (
            None if known is None else known + latest["completion_tokens"]
        )
    if earlier.get("duration_ms") is not None and "duration_ms" in latest:
        reading = latest.get("ttft_ms") or 0
        merged["duration_ms"] = earlier["duration_ms"] + latest["duration_ms"] - reading
    if earlier.get("ttft_ms") is not None:
        merged["ttft_ms"] = earlier["ttft_ms"]
    return merged


# What the model is asked, after the partial answer, to carry on with it.
CONTINUE_INSTRUCTION = (
    "Continue your previous answer exactly where it stopped, without repeating it."
)
