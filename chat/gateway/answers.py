"""OpenAI's response objects, each built in one place: the model list, a chat completion
and a text completion (whole, from the settled reply's row, or as stream chunks), usage."""

import time
from dataclasses import dataclass, field

from chat.models import Message

OWNER = "koboldcpp"


def model_list(models: dict[str, int]) -> dict:
    """{model id: created} as OpenAI's list."""
    return {
        "object": "list",
        "data": [
            {"id": model_id, "object": "model", "created": created, "owned_by": OWNER}
            for model_id, created in models.items()
        ],
    }


def finish_reason(message: Message | dict) -> str:
    """OpenAI's words: "length" when cut by max_tokens, else "stop" (a stopped reply
    too)."""
    reason = (
        message["finish_reason"] if isinstance(message, dict) else message.finish_reason
    )
    return "length" if reason == "length" else "stop"


def usage(prompt_tokens: int | None, completion_tokens: int | None) -> dict:
    prompt, completion = prompt_tokens or 0, completion_tokens or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


@dataclass
class Answer:
    """The answer to one request: `chat` (/v1/chat/completions) or a text completion."""

    message_id: int
    model: str
    chat: bool = True
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def id(self) -> str:
        return f"{'chatcmpl' if self.chat else 'cmpl'}-{self.message_id}"

    def _head(self, kind: str) -> dict:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
        }

    def whole(self, message: Message) -> dict:
        """The non-streamed answer, from the settled reply."""
        reason = finish_reason(message)
        if self.chat:
            said = {"role": "assistant", "content": message.content}
            if message.reasoning:
                said["reasoning_content"] = message.reasoning
            choice = {"index": 0, "message": said, "finish_reason": reason}
            kind = "chat.completion"
        else:
            choice = {"index": 0, "text": message.content, "finish_reason": reason}
            choice["logprobs"] = None
            kind = "text_completion"
        counts = usage(message.prompt_tokens, message.completion_tokens)
        return self._head(kind) | {"choices": [choice], "usage": counts}

    def chunk(
        self,
        *,
        content: str = "",
        reasoning: str = "",
        role: bool = False,
        reason: str | None = None,
    ) -> dict:
        """One stream chunk: new text, or (`reason`) the end of the choice."""
        if not self.chat:
            choice = {"index": 0, "text": content, "finish_reason": reason}
            return self._head("text_completion") | {
                "choices": [choice | {"logprobs": None}]
            }
        delta: dict = {"role": "assistant", "content": ""} if role else {}
        if content:
            delta["content"] = content
        if reasoning:
            delta["reasoning_content"] = reasoning
        choice = {"index": 0, "delta": delta, "finish_reason": reason}
        return self._head("chat.completion.chunk") | {"choices": [choice]}

    def usage_chunk(self, metrics: dict) -> dict:
        """The last chunk with `stream_options.include_usage`: no choices, the usage."""
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        counts = usage(metrics.get("prompt_tokens"), metrics.get("completion_tokens"))
        return self._head(kind) | {"choices": [], "usage": counts}
