"""The streaming splitter of a reply's thinking and answer (agents.reasoning), alone
and in LLMService's streams from the fake KoboldCpp."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.events import AnswerRetracted, Finished, ReasoningDelta, TextDelta
from agents.reasoning import ReasoningSplitter
from agents.runtime import watch_stream
from kobold_fake.server import Script
from tests.agents.services import MESSAGES, SETTINGS, collect, service


def run(*chunks: str) -> tuple[list, ReasoningSplitter]:
    """Every piece of a reply fed as `chunks`, and the finished splitter."""
    splitter = ReasoningSplitter()
    pieces = [piece for chunk in chunks for piece in splitter.feed(chunk)]
    return pieces + splitter.finish(), splitter


def fold(pieces: list) -> tuple[str, str]:
    """The reasoning and the answer the pieces add up to (AnswerRetracted empties the
    answer so far)."""
    reasoning, answer = "", ""
    for piece in pieces:
        if isinstance(piece, ReasoningDelta):
            reasoning += piece.text
        elif isinstance(piece, TextDelta):
            answer += piece.text
        elif isinstance(piece, AnswerRetracted):
            answer = ""
    return reasoning, answer


def split(*chunks: str) -> tuple[str, str]:
    return fold(run(*chunks)[0])


FORMS = {
    "think": "<think>\nThe user greets me.\n</think>\n\nHello!",
    "gpt-oss": (
        "<|channel|>analysis<|message|>The user greets me.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>Hello!"
    ),
    "gpt-oss-no-end": (
        "<|channel|>analysis<|message|>The user greets me."
        "<|start|>assistant<|channel|>final<|message|>Hello!"
    ),
    "seed": "<seed:think>The user greets me.</seed:think>Hello!",
    "command-r": (
        "<|START_THINKING|>The user greets me.<|END_THINKING|>"
        "<|START_RESPONSE|>Hello!<|END_RESPONSE|>"
    ),
    "gemma4": "<|channel>thought\nThe user greets me.<channel|>Hello!",
}


@pytest.mark.parametrize("form", FORMS)
def test_each_tag_form_splits_thinking_from_the_answer(form):
    """Each thinkformats family gives its thinking as reasoning and the rest as the
    answer; no marker and no whitespace around the thinking reaches either."""
    assert split(FORMS[form]) == ("The user greets me.", "Hello!")


@pytest.mark.parametrize("form", FORMS)
def test_a_tag_split_at_any_position_splits_the_same(form):
    """However the reply is cut in two (mid-marker included), the split is the same."""
    text = FORMS[form]
    for cut in range(1, len(text)):
        assert split(text[:cut], text[cut:]) == ("The user greets me.", "Hello!"), cut


def test_thinking_streams_as_it_arrives():
    """Reasoning is passed on chunk by chunk, a marker cut across tokens included."""
    splitter = ReasoningSplitter()
    assert splitter.feed("<thi") == []
    assert splitter.feed("nk>Let me") == [ReasoningDelta("Let me")]
    assert splitter.feed(" think</th") == [ReasoningDelta(" think")]
    assert splitter.feed("ink>Answer") == [TextDelta("Answer")]
    assert splitter.finish() == []
    assert splitter.format.name == "think" and not splitter.unclosed_reasoning


def test_unclosed_thinking_is_all_reasoning_and_said_so():
    """A reply that runs out while thinking: all of it is reasoning, the answer is
    empty, and the splitter says the thinking was left open."""
    pieces, splitter = run("<think>Step one", ", step two", " and </thi")
    assert fold(pieces) == ("Step one, step two and </thi", "")
    assert splitter.unclosed_reasoning


def test_closed_thinking_is_not_unclosed():
    """A closed thinking, even with an empty answer, is not reported as unclosed."""
    pieces, splitter = run("<think>done</think>")
    assert fold(pieces) == ("done", "") and not splitter.unclosed_reasoning


def test_think_in_the_middle_of_an_answer_is_answer_text():
    """Thinking counts at the reply's start only: tags the answer talks about stay."""
    text = "Wrap it in <think> and end with </think>, like HTML."
    pieces, splitter = run(text)
    assert fold(pieces) == ("", text)
    assert splitter.format is None and not splitter.unclosed_reasoning


def test_a_closing_tag_first_makes_everything_before_it_reasoning():
    """The template opened the thinking in the prompt, so only `</think>` comes: the
    answer so far is retracted and given again as reasoning."""
    pieces, _ = run("Okay, the user", " said hi.\n</think>\n\nHello!")
    assert pieces == [
        TextDelta("Okay, the user"),
        AnswerRetracted(),
        ReasoningDelta("Okay, the user said hi."),
        TextDelta("Hello!"),
    ]


def test_a_closing_tag_at_the_very_start_retracts_nothing():
    """A closing marker before any text: no retraction, the rest is the answer."""
    assert run("</think>\n\nHello!")[0] == [TextDelta("Hello!")]


def test_without_thinking_the_text_is_unchanged_and_not_delayed():
    """A model without thinking: each chunk comes out at once and whole, leading and
    inner whitespace and all."""
    splitter = ReasoningSplitter()
    assert splitter.feed("Hello") == [TextDelta("Hello")]
    assert splitter.feed(" there,\n") == [TextDelta(" there,\n")]
    assert splitter.feed("friend!") == [TextDelta("friend!")]
    assert splitter.finish() == []
    assert split("\n\n  Hi ") == ("", "\n\n  Hi ")


def test_a_possible_marker_is_held_only_until_it_cannot_be_one():
    """A `<` at the start (or anywhere in an answer that opened with no marker) waits
    for the next chunk; `finish()` releases what is still held."""
    splitter = ReasoningSplitter()
    assert splitter.feed("<") == []
    assert splitter.feed("b>bold</b> <") == [TextDelta("<b>bold</b> ")]
    assert splitter.feed("3") == [TextDelta("<3")]
    assert splitter.feed(" <|") == [TextDelta(" ")]
    assert splitter.finish() == [TextDelta("<|")]


def test_command_r_response_markers_without_thinking_are_stripped():
    """A Command-R answer wrapped in START/END_RESPONSE loses the wrapping."""
    assert split("<|START_RESPONSE|>Hi<|END_RESPONSE|>") == ("", "Hi")


def test_server_split_reasoning_is_passed_on_and_the_answer_trimmed():
    """Thinking the server split out (reasoning_content) is passed on, whitespace
    around it dropped; the content after it is the answer, leading whitespace dropped,
    tags and all."""
    splitter = ReasoningSplitter()
    assert splitter.feed_reasoning("\nHmm") == [ReasoningDelta("Hmm")]
    assert splitter.feed_reasoning(" \n") == []
    assert splitter.feed_reasoning("m.\n") == [ReasoningDelta(" \nm.")]
    assert splitter.feed("\n\n") == []
    assert splitter.feed("Hi <think>") == [TextDelta("Hi <think>")]
    assert splitter.finish() == [] and not splitter.unclosed_reasoning


def test_server_split_reasoning_without_an_answer_is_unclosed():
    """Reasoning from the server and no content at all: the thinking never ended."""
    splitter = ReasoningSplitter()
    splitter.feed_reasoning("Still thinking")
    splitter.finish()
    assert splitter.unclosed_reasoning


REPLIES = [
    *FORMS.values(),
    "<think>\n a <b> c\n\n</think>\n\n<think> is a tag",
    "Plain < text <th with </ broken <|tags",
    "Before</think>After <think> kept",
    "<|START_THINKING|>x<|END_THINKING|>y <|END_RESPONSE|>",
    "<|channel|>analysis<|message|>plan<|end|>\n<|start|>assistant ok",
    "<think>never closed </think",
    "  \n",
]


@given(st.sampled_from(REPLIES), st.lists(st.integers(0, 120), max_size=12))
def test_any_chunking_gives_the_same_reasoning_and_answer(reply, cuts):
    """However a reply is chunked, its reasoning, answer and unclosed flag are the same
    as when it arrives whole."""
    bounds = [0, *sorted(c for c in cuts if c < len(reply)), len(reply)]
    chunks = [reply[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    whole, whole_splitter = run(reply)
    pieces, splitter = run(*chunks)
    assert fold(pieces) == fold(whole)
    assert splitter.unclosed_reasoning == whole_splitter.unclosed_reasoning


# -- through LLMService, from the fake KoboldCpp ----------------------------------------

THINKING = ["<think>", "\n", "Let me", " think", "\n", "</think>", "\n\n", "Answer"]


@pytest.mark.parametrize(
    ("api", "script"),
    [
        ("native", Script(tokens=["<thi", "nk>Let me", " think</th", "ink>Answer"])),
        ("native", Script(tokens=THINKING)),
        ("openai", Script(tokens=THINKING)),  # a server that leaves the tags in
        ("openai", Script(tokens=THINKING, reasoning_content=True)),
    ],
    ids=["native-cut-tags", "native", "openai-tags", "openai-reasoning_content"],
)
async def test_stream_chat_gives_reasoning_then_answer(make_fake, api, script):
    """Tags in the text (cut anywhere) or thinking split out by the server: the stream
    is ReasoningDelta, then TextDelta with no marker, then Finished."""
    fake = make_fake(version="1.117")
    fake.push(script)
    events = await collect(service(fake, api=api))
    assert events == [
        ReasoningDelta("Let me"),
        ReasoningDelta(" think"),
        TextDelta("Answer"),
        Finished("stop"),
    ]


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_stream_chat_reports_thinking_cut_by_the_token_limit(make_fake, api):
    """A reply that ends while thinking: reasoning only, and Finished says so."""
    fake = make_fake(version="1.117")
    tokens = ["<think>", "Step one", ", two"]
    fake.push(Script(tokens=tokens, finish_reason="length", reasoning_content=True))
    events = await collect(service(fake, api=api))
    assert events == [
        ReasoningDelta("Step one"),
        ReasoningDelta(", two"),
        Finished("length", reasoning_unclosed=True),
    ]


async def test_reasoning_tokens_count_as_activity_for_the_watchdog(fake_kobold):
    """Thinking arrives as tokens: a long thinking with no answer yet is no silence."""
    fake_kobold.push(
        Script(tokens=["<think>", *["hm"] * 15, "</think>", "A"], delay=0.1)
    )
    svc = service(fake_kobold)
    stream = svc.stream_chat(MESSAGES, settings=SETTINGS, genkey="W1")
    watched = watch_stream(
        stream, genkey="W1", abort=svc.abort, max_silence=1.0, total_timeout=30
    )
    events = [event async for event in watched]
    assert events[:15] == [ReasoningDelta("hm")] * 15
    assert events[15:] == [TextDelta("A"), Finished("stop")]
    assert fake_kobold.aborts == []
