"""Which chat template the native prompt uses: KOBOLDCPP_CHAT_TEMPLATE, or "auto".

"auto" decides from what the backend says, in this order:

1. KoboldCpp 1.94 and later: the "server" template. Its prompt carries KoboldCpp's
   instruct placeholders ({{[SYSTEM]}}, {{[INPUT]}}, {{[OUTPUT]}} and their _END forms,
   in stop sequences too) and `replace_instruct_placeholders: true`; the server replaces
   them with the markers of its own adapter, which recent versions guess from the
   model's GGUF template (AutoGuess). The replacement appeared after 1.82 (not in its
   transform_genparams) and is on by default since 1.94 (henk717 in SillyTavern PR
   #4193; 1.102's koboldcpp.py has it); from 1.94 on it surely works, so older servers
   get a template of ours. `GET /props` (its `chat_template`) is not read: it exists
   only on servers that take the placeholders anyway.
2. The model name of `GET /api/v1/model` ("koboldcpp/SmolLM2-135M-Instruct.Q4_1")
   against PATTERNS, first match wins: fine-tunes that change the format (Hermes,
   Dolphin on Mistral or Llama) come before their base model's pattern.
3. ChatML: most small instruct models know it, and its stop sequences are safe.

The choice is made once per backend (LLMService caches it) and says why it was made.
"""

import re
from dataclasses import dataclass

from agents.chat_templates import CHATML, SERVER, ChatTemplate, get_template

PLACEHOLDERS_SINCE = (1, 94)
_LEFT = r"(?<![a-z0-9])"  # a pattern starts a word: "yi" is not in "tinyllama"
PATTERNS: tuple[tuple[str, str], ...] = (
    (_LEFT + r"deepseek", "deepseek"),
    (_LEFT + r"(command-?r|c4ai|aya)", "command-r"),
    (_LEFT + r"(hermes|dolphin|openorca|smollm|qwen|yi|chatml)", "chatml"),
    (_LEFT + r"llama-?3", "llama3"),
    (_LEFT + r"gemma", "gemma"),
    (_LEFT + r"phi-?3", "phi3"),
    (_LEFT + r"(mistral|mixtral|ministral|codestral|devstral|magistral)", "mistral"),
    (_LEFT + r"(vicuna|wizardlm)", "vicuna"),
    (_LEFT + r"alpaca", "alpaca"),
)


@dataclass(frozen=True)
class TemplateChoice:
    """A template and why it was chosen (kobold_check prints both)."""

    template: ChatTemplate
    source: str  # "override" | "server" | "model" | "fallback" | "openai"
    reason: str


def choose_template(
    setting: str, *, model: str | None = None, version: str | None = None
) -> TemplateChoice:
    """The template for KOBOLDCPP_CHAT_TEMPLATE=`setting` on a backend serving `model`
    at KoboldCpp `version` (None when unknown). Raises ValueError on an unknown name."""
    if setting.strip().lower() != "auto":
        template = get_template(setting)
        return TemplateChoice(
            template, "override", f"KOBOLDCPP_CHAT_TEMPLATE={setting.strip()}"
        )
    if version and version_tuple(version) >= PLACEHOLDERS_SINCE:
        return TemplateChoice(
            SERVER,
            "server",
            f"KoboldCpp {version} fills the {{{{[INPUT]}}}}/{{{{[OUTPUT]}}}} "
            "placeholders with its own template",
        )
    name = (model or "").lower()
    for pattern, template_name in PATTERNS:
        if found := re.search(pattern, name):
            return TemplateChoice(
                get_template(template_name),
                "model",
                f"model name {model!r} matched pattern {found[0]!r}",
            )
    return TemplateChoice(
        CHATML, "fallback", f"no known pattern in model name {model!r}; ChatML"
    )


def openai_choice() -> TemplateChoice:
    """The OpenAI API sends messages: the server formats them, ChatML only estimates."""
    return TemplateChoice(CHATML, "openai", "the server's own (OpenAI API)")


def version_tuple(version: str) -> tuple[int, ...]:
    """(1, 102) from "1.102.2", (1, 82) from "1.82.4.yr0-ROCm"; () when unreadable."""
    numbers = re.findall(r"\d+", version.split("-", 1)[0])
    return tuple(int(n) for n in numbers[:2])
