"""The fake KoboldCpp's response bodies: SSE payloads of a stream (native, OpenAI chat
and text, in the 1.76, 1.102 and llama-cpp-python forms) and non-streamed answers."""

from __future__ import annotations

import time
import uuid

from kobold_fake.thinking import ThinkingSplit
from kobold_fake.wire import compact, dumps


class SseFormat:
    """SSE payloads of one stream. api: native|chat|text; style: 1.76|1.102|llamacpp."""

    def __init__(self, api: str, style: str, model: str, *, reasoning: bool = False):
        self.api = api
        self.style = style
        self.model = model
        # A newer KoboldCpp's chat endpoint sends the thinking apart (Script option).
        split = reasoning and api == "chat" and style != "llamacpp"
        self.thinking = ThinkingSplit() if split else None
        self.created = int(time.time())
        self.id = (
            f"chatcmpl-{uuid.uuid4()}" if api == "chat" else f"cmpl-{uuid.uuid4()}"
        )

    def _event(self, text: str, reason: str | None, *, role: bool = False) -> bytes:
        if self.style == "llamacpp":
            return self._llamacpp(text, reason, role=role)
        if reason is None and self.style == "1.76":
            reason = "null"  # 1.76 streams the string "null" until the last event
        if self.api == "native":
            payload = {"token": text, "finish_reason": reason}
            return b"event: message\ndata: " + dumps(payload) + b"\n\n"
        choice: dict = {"index": 0, "finish_reason": reason}
        if self.api == "chat":
            field = self.thinking.field(text) if self.thinking and text else "content"
            if field is None:  # a thinking tag: nothing of it is sent
                if reason is None:
                    return b""
                field, text = "content", ""
            choice["delta"] = {"role": "assistant", field: text}
            kind = "chat.completion.chunk"
        else:
            choice["text"] = text
            kind = "text_completion"
        chunk = {
            "id": "koboldcpp",
            "object": kind,
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }
        return b"data: " + dumps(chunk) + b"\n\n"

    def _llamacpp(self, text: str, reason: str | None, *, role: bool) -> bytes:
        chunk: dict = {"id": self.id, "model": self.model, "created": self.created}
        if self.api == "chat":
            delta = (
                {"role": "assistant"} if role else ({"content": text} if text else {})
            )
            chunk["object"] = "chat.completion.chunk"
            choice = {"index": 0, "delta": delta, "logprobs": None}
        else:
            chunk["object"] = "text_completion"
            choice = {"text": text, "index": 0, "logprobs": None}
        chunk["choices"] = [{**choice, "finish_reason": reason}]
        return b"data: " + dumps(chunk) + b"\n\n"

    def start(self) -> bytes:
        """What precedes the first token: llama-cpp-python's role-only chunk."""
        if self.style == "llamacpp" and self.api == "chat":
            return self._event("", None, role=True)
        return b""

    def token(self, text: str) -> bytes:
        """One intermediate event."""
        return self._event(text, None)

    def final(self, text: str, reason: str) -> bytes:
        """The last event(s): newer servers split trailing text from the reason."""
        if self.style == "1.76" or not text:
            return self._event(text, reason)
        return self._event(text, None) + self._event("", reason)

    def end(self) -> bytes:
        """The end marker: none natively, `[DONE]` without a newline in 1.76."""
        if self.api == "native":
            return b""
        return b"data: [DONE]" if self.style == "1.76" else b"data: [DONE]\n\n"


def result_body(
    api: str, style: str, model: str, text: str, reason: str, usage: tuple[int, int]
) -> bytes:
    """The non-streamed answer of a generation, with 1.76's placeholder usage."""
    prompt, completion = usage if style != "1.76" else (100, 100)
    counts = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    created = int(time.time())
    if style == "llamacpp":
        if api == "chat":
            message = {"content": text, "role": "assistant"}
            choice = {"index": 0, "message": message, "logprobs": None}
            head = {"id": f"chatcmpl-{uuid.uuid4()}", "object": "chat.completion"}
        else:
            choice = {"text": text, "index": 0, "logprobs": None}
            head = {"id": f"cmpl-{uuid.uuid4()}", "object": "text_completion"}
        choices = [{**choice, "finish_reason": reason}]
        return compact(
            {
                **head,
                "created": created,
                "model": model,
                "choices": choices,
                "usage": counts,
            }
        )
    if api == "native":
        result: dict = {"text": text, "finish_reason": reason}
        if style != "1.76":
            result = {"text": text, "tool_calls": [], "finish_reason": reason}
            result.update(
                logprobs=None, prompt_tokens=prompt, completion_tokens=completion
            )
        return dumps({"results": [result]})
    if api == "chat":
        message = {"role": "assistant", "content": text, "tool_calls": []}
        choice = {"index": 0, "message": message, "finish_reason": reason}
        head = {"id": "chatcmpl-A1", "object": "chat.completion"}
    else:
        choice = {"text": text, "index": 0, "finish_reason": reason}
        head = {"id": "cmpl-A1", "object": "text_completion"}
    return dumps(
        {
            **head,
            "created": created,
            "model": model,
            "usage": counts,
            "choices": [choice],
        }
    )
