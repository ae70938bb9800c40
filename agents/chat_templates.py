"""Chat templates: a list of turns becomes one raw prompt for KoboldCpp's native API.

Shaped like KoboldCpp's adapters (kcpp_adapters/): a start and an end string a role.
"""

from dataclasses import dataclass

from agents.events import ChatTurn


@dataclass(frozen=True)
class ChatTemplate:
    """Role markers of one prompt format, and the stop sequences that end a reply."""

    name: str
    system_start: str
    system_end: str
    user_start: str
    user_end: str
    assistant_start: str
    assistant_end: str
    stop: list[str]
    # How the prompt asks for a reply, when that differs from assistant_start.
    assistant_gen: str | None = None

    def render(self, messages: list[ChatTurn]) -> str:
        """The prompt for `messages`, ending with the start of the assistant's reply."""
        parts = [self._turn(message) for message in messages]
        gen = self.assistant_start if self.assistant_gen is None else self.assistant_gen
        return "".join(parts) + gen

    def _turn(self, message: ChatTurn) -> str:
        start, end = {
            "system": (self.system_start, self.system_end),
            "user": (self.user_start, self.user_end),
            "assistant": (self.assistant_start, self.assistant_end),
        }[message.role]
        return f"{start}{message.content}{end}"


CHATML = ChatTemplate(
    name="chatml",
    system_start="<|im_start|>system\n",
    system_end="<|im_end|>\n",
    user_start="<|im_start|>user\n",
    user_end="<|im_end|>\n",
    assistant_start="<|im_start|>assistant\n",
    assistant_end="<|im_end|>\n",
    stop=["<|im_end|>", "<|im_start|>"],
)

# No <|begin_of_text|>: KoboldCpp adds the BOS itself when it tokenizes the prompt.
LLAMA3 = ChatTemplate(
    name="llama3",
    system_start="<|start_header_id|>system<|end_header_id|>\n\n",
    system_end="<|eot_id|>",
    user_start="<|start_header_id|>user<|end_header_id|>\n\n",
    user_end="<|eot_id|>",
    assistant_start="<|start_header_id|>assistant<|end_header_id|>\n\n",
    assistant_end="<|eot_id|>",
    stop=["<|eot_id|>", "<|start_header_id|>"],
)

ALPACA = ChatTemplate(
    name="alpaca",
    system_start="",
    system_end="\n\n",
    user_start="### Instruction:\n",
    user_end="\n\n",
    assistant_start="### Response:\n",
    assistant_end="\n\n",
    stop=["### Instruction:", "### Response:"],
)

# KoboldCpp's "Mistral Non-Tekken" adapter: the reply is asked for with a bare [/INST].
MISTRAL = ChatTemplate(
    name="mistral",
    system_start="[INST] ",
    system_end="[/INST]",
    user_start="[INST] ",
    user_end="",
    assistant_start="[/INST] ",
    assistant_end="</s>",
    stop=["</s>", "[INST]"],
    assistant_gen="[/INST]",
)

TEMPLATES = {template.name: template for template in (CHATML, LLAMA3, ALPACA, MISTRAL)}
_ALIASES = {"llama-3": "llama3", "llama_3": "llama3", "mistral-v1": "mistral"}


def get_template(name: str) -> ChatTemplate:
    """The template called `name` (case-insensitive, e.g. "chatml", "Llama-3")."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return TEMPLATES[key]
    except KeyError:
        known = ", ".join(sorted(TEMPLATES))
        raise ValueError(f"unknown chat template {name!r}; known: {known}") from None
