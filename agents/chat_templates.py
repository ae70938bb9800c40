"""Chat templates: a list of turns becomes one raw prompt for KoboldCpp's native API.

Shaped like KoboldCpp's adapters (kcpp_adapters/): a start and an end string a role.
Message text is neutralised first, so a message cannot forge a turn of its own.
"""

import re
from dataclasses import dataclass

from agents.events import ChatTurn

# Inserted after the first character of a role marker found in message text: the
# tokenizer then no longer reads a special token there, and the text reads the same.
ZERO_WIDTH_SPACE = "\u200b"
# Token-like role markers of every known format (ChatML, Llama 3, Phi-3, Command-R,
# DeepSeek's full-width bars, Mistral, Gemma, KoboldCpp's placeholders, </s>), whatever
# the template in use: a model may know special tokens of formats it was not tuned on.
_SPECIAL_MARKERS = re.compile(
    r"<\|[\w.-]{1,40}\|>"
    r"|<\uff5c[^\uff5c<>]{1,40}\uff5c>"
    r"|\[/?(?:INST|SYSTEM_PROMPT|AVAILABLE_TOOLS|TOOL_CALLS)\]"
    r"|</?(?:start|end)_of_turn>"
    r"|\{\{\[[A-Z_]{1,20}\]\}\}"
    r"|</?s>"
)


def neutralise(text: str, plain_markers: tuple[str, ...] = ()) -> str:
    """`text` with every role marker broken by a zero-width space (`<|` -> `<\u200b|`).

    `plain_markers` are a template's markers in plain words ("### Instruction:"),
    broken the same way.
    """
    text = _SPECIAL_MARKERS.sub(_break, text)
    for marker in plain_markers:
        text = text.replace(marker, marker[0] + ZERO_WIDTH_SPACE + marker[1:])
    return text


def _break(match: re.Match) -> str:
    marker = match[0]
    return marker[0] + ZERO_WIDTH_SPACE + marker[1:]


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
    stop: tuple[str, ...]
    # How the prompt asks for a reply, when that differs from assistant_start.
    assistant_gen: str | None = None
    # Role markers in plain words, neutralised in message text like special tokens.
    plain_markers: tuple[str, ...] = ()
    # The markers are KoboldCpp's placeholders: the server puts its own template in.
    server_side: bool = False

    def render(self, messages: list[ChatTurn]) -> str:
        """The prompt for `messages`, ending with the start of the assistant's reply:
        a last assistant turn is that start, left open for the model to carry on."""
        if messages and messages[-1].role == "assistant":
            *done, last = messages
            opened = neutralise(last.content, self.plain_markers)
            return "".join(self._turn(m) for m in done) + self.assistant_start + opened
        parts = [self._turn(message) for message in messages]
        gen = self.assistant_start if self.assistant_gen is None else self.assistant_gen
        return "".join(parts) + gen

    def _turn(self, message: ChatTurn) -> str:
        start, end = {
            "system": (self.system_start, self.system_end),
            "user": (self.user_start, self.user_end),
            "assistant": (self.assistant_start, self.assistant_end),
        }[message.role]
        return f"{start}{neutralise(message.content, self.plain_markers)}{end}"


def _uniform(
    name: str,
    start: str,
    end: str,
    stop: tuple[str, ...],
    roles: dict[str, str] | None = None,
) -> ChatTemplate:
    """A template whose turns all read `start` (with the role's name) text `end`."""
    roles = {"system": "system", "user": "user", "assistant": "assistant"} | (
        roles or {}
    )
    starts = {role: start.format(role=word) for role, word in roles.items()}
    return ChatTemplate(
        name=name,
        system_start=starts["system"],
        system_end=end,
        user_start=starts["user"],
        user_end=end,
        assistant_start=starts["assistant"],
        assistant_end=end,
        stop=stop,
    )


CHATML = _uniform(
    "chatml", "<|im_start|>{role}\n", "<|im_end|>\n", ("<|im_end|>", "<|im_start|>")
)
# No <|begin_of_text|>: KoboldCpp adds the BOS itself when it tokenizes the prompt.
LLAMA3 = _uniform(
    "llama3",
    "<|start_header_id|>{role}<|end_header_id|>\n\n",
    "<|eot_id|>",
    ("<|eot_id|>", "<|start_header_id|>"),
)
# Gemma has no system role: like KoboldCpp's adapter, the system text is a user turn.
GEMMA = _uniform(
    "gemma",
    "<start_of_turn>{role}\n",
    "<end_of_turn>\n",
    ("<end_of_turn>", "<start_of_turn>"),
    roles={"system": "user", "assistant": "model"},
)
PHI3 = _uniform(
    "phi3", "<|{role}|>\n", "<|end|>\n", ("<|end|>", "<|user|>", "<|endoftext|>")
)
COMMAND_R = _uniform(
    "command-r",
    "<|START_OF_TURN_TOKEN|><|{role}_TOKEN|>",
    "<|END_OF_TURN_TOKEN|>",
    ("<|END_OF_TURN_TOKEN|>", "<|START_OF_TURN_TOKEN|>"),
    roles={"system": "SYSTEM", "user": "USER", "assistant": "CHATBOT"},
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
    stop=("</s>", "[INST]"),
    assistant_gen="[/INST]",
)

ALPACA = ChatTemplate(
    name="alpaca",
    system_start="",
    system_end="\n\n",
    user_start="### Instruction:\n",
    user_end="\n\n",
    assistant_start="### Response:\n",
    assistant_end="\n\n",
    stop=("### Instruction:", "### Response:"),
    plain_markers=("### Instruction:", "### Response:"),
)

VICUNA = ChatTemplate(
    name="vicuna",
    system_start="",
    system_end="\n\n",
    user_start="USER: ",
    user_end="\n",
    assistant_start="ASSISTANT: ",
    assistant_end="</s>\n",
    stop=("USER:", "</s>"),
    assistant_gen="ASSISTANT:",
    plain_markers=("USER:", "ASSISTANT:"),
)

# The bars are U+FF5C FULLWIDTH VERTICAL LINE, the spaces U+2581 LOWER ONE EIGHTH BLOCK.
DEEPSEEK = ChatTemplate(
    name="deepseek",
    system_start="",
    system_end="",
    user_start="<\uff5cUser\uff5c>",
    user_end="",
    assistant_start="<\uff5cAssistant\uff5c>",
    assistant_end="<\uff5cend\u2581of\u2581sentence\uff5c>",
    stop=("<\uff5cend\u2581of\u2581sentence\uff5c>", "<\uff5cUser\uff5c>"),
)

# KoboldCpp's instruct placeholders (agents.template_choice says from which version):
# the server replaces them, stop sequences included, with its own adapter's markers.
SERVER = ChatTemplate(
    name="server",
    system_start="{{[SYSTEM]}}",
    system_end="{{[SYSTEM_END]}}",
    user_start="{{[INPUT]}}",
    user_end="{{[INPUT_END]}}",
    assistant_start="{{[OUTPUT]}}",
    assistant_end="{{[OUTPUT_END]}}",
    stop=("{{[INPUT]}}", "{{[OUTPUT]}}", "{{[OUTPUT_END]}}"),
    server_side=True,
)

TEMPLATES = {
    template.name: template
    for template in (
        CHATML,
        LLAMA3,
        GEMMA,
        MISTRAL,
        PHI3,
        ALPACA,
        VICUNA,
        DEEPSEEK,
        COMMAND_R,
        SERVER,
    )
}
_ALIASES = {
    "llama-3": "llama3",
    "llama_3": "llama3",
    "mistral-v1": "mistral",
    "qwen": "chatml",
    "gemma-2": "gemma",
    "gemma2": "gemma",
    "phi-3": "phi3",
    "command_r": "command-r",
    "commandr": "command-r",
}


def get_template(name: str) -> ChatTemplate:
    """The template called `name` (case-insensitive, e.g. "chatml", "Llama-3")."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return TEMPLATES[key]
    except KeyError:
        known = ", ".join(["auto", *sorted(TEMPLATES)])
        raise ValueError(f"unknown chat template {name!r}; known: {known}") from None
