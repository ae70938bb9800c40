"""A continued reply: its new text joins the old readably; its metrics cover it all."""

import pytest

from chat.replies.continuation import merged_metrics, separator


@pytest.mark.parametrize(
    ("before", "text", "joined"),
    [
        ("Her sails", "As I gaze", "Her sails As I gaze"),
        ("Her sails", " as I gaze", "Her sails as I gaze"),
        ("Her sails\n", "As I gaze", "Her sails\nAs I gaze"),
        ("Her sails", ", white", "Her sails, white"),
        ("He said “", "yes", "He said “yes"),
        ("月が", "綺麗", "月が綺麗"),
        ("", "Start", "Start"),
    ],
)
def test_the_continuation_joins_the_text(before, text, joined):
    assert before + separator(before, text) + text == joined


def test_metrics_count_every_generation():
    """20 + 30 tokens; the reply's first token; the second prompt read is not counted
    as generating time."""
    earlier = {"completion_tokens": 20, "duration_ms": 2500, "ttft_ms": 500}
    latest = {"completion_tokens": 30, "duration_ms": 3400, "ttft_ms": 400}
    assert merged_metrics(earlier, latest) == {
        "completion_tokens": 50,
        "duration_ms": 5500,
        "ttft_ms": 500,
    }


def test_unknown_earlier_tokens_make_the_total_unknown():
    """Better no count than the count of the last part only."""
    earlier = {"completion_tokens": None, "duration_ms": None, "ttft_ms": None}
    merged = merged_metrics(earlier, {"completion_tokens": 30, "duration_ms": 10})
    assert merged == {"completion_tokens": None}


def test_a_first_generation_is_left_alone():
    assert merged_metrics({}, {"completion_tokens": 30, "duration_ms": 10}) == {}
