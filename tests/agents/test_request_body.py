"""The one generation body builder: native and OpenAI bodies, model settings, genkeys."""

import re

from agents.chat_templates import get_template
from agents.events import ChatTurn
from agents.request_body import (
    MAX_STOP_SEQUENCES,
    GenerationSettings,
    generation_request,
    native_body,
    new_genkey,
    openai_body,
)

TURNS = [ChatTurn("system", "Be brief."), ChatTurn("user", "Hi")]
CHATML = get_template("chatml")


def test_native_body_has_prompt_sampler_stops_and_genkey():
    """Our sampler names become KoboldCpp's; template stops come first, deduplicated."""
    settings = GenerationSettings(max_tokens=50, stop=["<|im_end|>", "\nUser:"])
    body = native_body(CHATML, TURNS, settings, genkey="K1", max_context=4096)
    assert body == {
        "prompt": CHATML.render(TURNS),
        "max_length": 50,
        "temperature": 0.7,
        "top_p": 0.92,
        "top_k": 100,
        "rep_pen": 1.1,
        "stop_sequence": ["<|im_end|>", "<|im_start|>", "\nUser:"],
        "trim_stop": True,
        "max_context_length": 4096,
        "genkey": "K1",
    }


def test_none_fields_grammar_and_extra_fields():
    """None leaves a field to KoboldCpp; grammar and extra fields (max_length too)
    pass through; the genkey cannot be overridden by them."""
    settings = GenerationSettings(
        temperature=None,
        top_k=None,
        grammar='root ::= "yes" | "no"',
        extra={"max_length": 4, "sampler_seed": 7, "genkey": "other"},
    )
    body = native_body(CHATML, TURNS, settings, genkey="K2")
    assert "temperature" not in body and "top_k" not in body
    assert body["grammar"] == 'root ::= "yes" | "no"'
    assert (body["max_length"], body["sampler_seed"], body["genkey"]) == (4, 7, "K2")
    assert "max_context_length" not in body


def test_stop_sequences_are_capped_at_koboldcpps_limit():
    """KoboldCpp reads 32 stop sequences at most."""
    settings = GenerationSettings(stop=[f"s{i}" for i in range(40)])
    body = native_body(CHATML, TURNS, settings, genkey="K3")
    assert len(body["stop_sequence"]) == MAX_STOP_SEQUENCES


def test_the_server_template_asks_for_its_placeholders_to_be_replaced():
    """The "server" template sets replace_instruct_placeholders."""
    body = native_body(get_template("server"), TURNS, GenerationSettings(), genkey="K")
    assert body["replace_instruct_placeholders"] is True
    assert "replace_instruct_placeholders" not in native_body(
        CHATML, TURNS, GenerationSettings(), genkey="K"
    )


def test_openai_body():
    """/v1 gets messages, max_tokens, temperature, top_p, stop, stream and genkey."""
    settings = GenerationSettings(max_tokens=50, stop=["\nUser:"], grammar="g")
    assert openai_body(TURNS, settings, genkey="OA", stream=True) == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "max_tokens": 50,
        "temperature": 0.7,
        "top_p": 0.92,
        "stop": ["\nUser:"],
        "stream": True,
        "grammar": "g",
        "genkey": "OA",
    }


def test_generation_request_picks_the_path():
    """Streamed native, plain native and /v1 each have their path."""
    settings = GenerationSettings()
    paths = [
        generation_request(api, CHATML, TURNS, settings, genkey="K", stream=stream)[0]
        for api, stream in (("native", True), ("native", False), ("openai", True))
    ]
    assert paths == [
        "/api/extra/generate/stream",
        "/api/v1/generate",
        "/v1/chat/completions",
    ]


def test_model_settings_send_only_what_they_name():
    """pydantic-ai settings are renamed; its own other keys are dropped; unknown keys
    (rep_pen, grammar, genkey, max_length) reach KoboldCpp."""
    settings = GenerationSettings.from_model_settings(
        {
            "max_tokens": 60,
            "temperature": 0.1,
            "stop_sequences": ["\nUser:"],
            "seed": 3,
            "extra_body": {"genkey": "x"},
            "rep_pen": 1.2,
            "grammar": "root ::= x",
            "genkey": "MINE",
            "max_length": 4,
        }
    )
    body = native_body(CHATML, TURNS, settings, genkey=settings.extra.pop("genkey"))
    assert (body["max_length"], body["temperature"], body["rep_pen"]) == (4, 0.1, 1.2)
    assert (body["sampler_seed"], body["grammar"], body["genkey"]) == (
        3,
        "root ::= x",
        "MINE",
    )
    assert "top_p" not in body and "top_k" not in body and "extra_body" not in body
    assert body["stop_sequence"][-1] == "\nUser:"


def test_genkeys_have_one_format_and_differ():
    """Every genkey is kc- and 16 hex digits, and no two are alike."""
    keys = {new_genkey() for _ in range(100)}
    assert len(keys) == 100
    assert all(re.fullmatch(r"kc-[0-9a-f]{16}", key) for key in keys)
