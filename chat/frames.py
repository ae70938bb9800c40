"""Per-listener bookkeeping of reply frames: what each client already has, so that a
snapshot followed by live frames gives every character once, with no gap."""


class FrameFilter:
    def __init__(self):
        self._delivered: dict[int, int] = {}  # message id -> characters the client has
        self._waiting: dict[int, list[dict]] = {}  # message id -> frames held back

    def expect_snapshot(self, message_id: int) -> None:
        """Hold this reply's frames back until its snapshot arrives."""
        self._waiting.setdefault(message_id, [])

    def is_waiting(self, message_id: int) -> bool:
        return message_id in self._waiting

    def on_snapshot(self, snapshot: dict) -> list[dict]:
        """The snapshot, then the held-back frames that go past it."""
        message_id = snapshot["message_id"]
        self._delivered[message_id] = snapshot["offset"]
        out = [snapshot]
        for frame in self._waiting.pop(message_id, []):
            out.extend(self.on_frame(frame))
        return out

    def on_frame(self, frame: dict) -> list[dict]:
        """The part of `frame` this client does not have yet (maybe nothing)."""
        message_id = frame.get("message_id")
        if message_id in self._waiting:
            self._waiting[message_id].append(frame)
            return []
        kind = frame.get("type")
        if kind == "end":
            self._delivered.pop(message_id, None)
        if kind != "token":
            return [frame]
        offset, text = frame["offset"], frame["text"]
        have = self._delivered.get(message_id, offset)
        end = offset + len(text)
        if end <= have:
            return []
        self._delivered[message_id] = end
        if offset < have:
            return [{**frame, "offset": have, "text": text[have - offset :]}]
        return [frame]
