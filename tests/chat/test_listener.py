"""The per-listener offset filter: a snapshot followed by live frames gives every
character of a reply once, with no gap, whatever overlaps."""

from chat.replies.listener import FrameFilter


def token(offset, text, message_id=1):
    return {"type": "token", "message_id": message_id, "offset": offset, "text": text}


def snapshot(content, message_id=1):
    return {
        "type": "snapshot",
        "message_id": message_id,
        "content": content,
        "offset": len(content),
    }


def text_of(frames):
    out = ""
    for frame in frames:
        out += frame["content"] if frame["type"] == "snapshot" else frame["text"]
    return out


def test_frames_before_the_snapshot_are_held_then_trimmed():
    """Frames that arrive while waiting for the snapshot are replayed past its end."""
    frames = FrameFilter()
    frames.expect_snapshot(1)
    assert frames.on_frame(token(0, "Hel")) == []
    assert frames.on_frame(token(3, "lo ")) == []
    out = frames.on_snapshot(snapshot("Hell"))
    assert text_of(out) == "Hello "
    assert out[1] == token(4, "o ")


def test_a_frame_wholly_before_the_offset_is_dropped():
    frames = FrameFilter()
    frames.on_snapshot(snapshot("Hello"))
    assert frames.on_frame(token(0, "Hel")) == []
    assert frames.on_frame(token(5, "!")) == [token(5, "!")]


def test_a_listener_with_no_snapshot_takes_every_frame():
    """A socket that saw the reply start gets the frames as they are."""
    frames = FrameFilter()
    assert frames.on_frame(token(0, "a")) == [token(0, "a")]
    assert frames.on_frame(token(1, "b")) == [token(1, "b")]
    assert frames.on_frame(token(0, "ab")) == []


def test_end_forgets_the_reply_and_other_replies_are_apart():
    frames = FrameFilter()
    frames.on_snapshot(snapshot("abc"))
    frames.expect_snapshot(2)
    assert frames.on_frame(token(0, "x", message_id=2)) == []
    end = {"type": "end", "message_id": 1}
    assert frames.on_frame(end) == [end]
    assert frames.on_frame(token(0, "new", message_id=1)) == [token(0, "new")]
    assert frames.is_waiting(2) and not frames.is_waiting(1)


def reasoning(offset, text, message_id=1):
    return {
        "type": "reasoning",
        "message_id": message_id,
        "offset": offset,
        "text": text,
    }


def test_reasoning_has_offsets_of_its_own():
    """A snapshot with reasoning: reasoning frames are trimmed by reasoning_offset,
    token frames by offset, independently."""
    frames = FrameFilter()
    frames.expect_snapshot(1)
    frames.on_frame(reasoning(0, "Let me think"))
    frames.on_frame(token(0, "Hi"))
    out = frames.on_snapshot(
        {**snapshot(""), "reasoning": "Let me", "reasoning_offset": 6}
    )
    assert out[1:] == [reasoning(6, " think"), token(0, "Hi")]
    assert frames.on_frame(reasoning(0, "Let me think")) == []
    assert frames.on_frame(token(2, "!")) == [token(2, "!")]
