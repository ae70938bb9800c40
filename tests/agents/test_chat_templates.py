"""Chat templates: the prompt each one renders and the stop sequences it brings."""

import pytest

from agents.chat_templates import get_template
from agents.events import ChatTurn

TURNS = [
    ChatTurn("system", "Be brief."),
    ChatTurn("user", "Hi"),
    ChatTurn("assistant", "Hello!"),
    ChatTurn("user", "How are you?"),
]


def test_chatml_prompt():
    """ChatML wraps each turn in <|im_start|>role ... <|im_end|> and opens the reply."""
    assert get_template("chatml").render(TURNS) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nHow are you?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_llama3_prompt():
    """Llama-3 uses header ids and <|eot_id|>, and leaves the BOS to KoboldCpp."""
    prompt = get_template("llama3").render(TURNS[:2])
    assert prompt == (
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_alpaca_prompt():
    """Alpaca uses ### Instruction / ### Response sections."""
    assert get_template("alpaca").render(TURNS[:2]) == (
        "Be brief.\n\n### Instruction:\nHi\n\n### Response:\n"
    )


def test_mistral_prompt():
    """Mistral ends a past reply with </s> and asks for the next with a bare [/INST]."""
    assert get_template("mistral").render(TURNS[1:]) == (
        "[INST] Hi[/INST] Hello!</s>[INST] How are you?[/INST]"
    )


@pytest.mark.parametrize(
    ("name", "stop"),
    [
        ("chatml", "<|im_end|>"),
        ("llama3", "<|eot_id|>"),
        ("alpaca", "### Instruction:"),
        ("mistral", "</s>"),
    ],
)
def test_templates_stop_at_their_end_of_turn(name, stop):
    """Each template's stop sequences include its end-of-turn marker."""
    assert stop in get_template(name).stop


def test_names_are_case_insensitive_with_aliases():
    """`Llama-3` and `ChatML` find their templates."""
    assert get_template("Llama-3") is get_template("llama3")
    assert get_template("ChatML").name == "chatml"


def test_unknown_template_is_an_error_naming_the_known_ones():
    """A misspelt KOBOLDCPP_CHAT_TEMPLATE fails loudly."""
    with pytest.raises(ValueError, match="chatml"):
        get_template("chatmI")
