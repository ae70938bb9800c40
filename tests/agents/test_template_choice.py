"""The "auto" choice of the chat template: override, server placeholders, model name;
made once per backend by LLMService."""

import pytest

from agents.template_choice import choose_template, version_tuple
from tests.agents.services import collect, service


@pytest.mark.parametrize(
    ("model", "template"),
    [
        ("koboldcpp/SmolLM2-135M-Instruct.Q4_1", "chatml"),
        ("koboldcpp/qwen2.5-7b-instruct-q4_k_m", "chatml"),
        ("koboldcpp/Hermes-3-Llama-3.1-8B.Q4_K_M", "chatml"),
        ("koboldcpp/dolphin-2.6-mistral-7b.Q5_K_M", "chatml"),
        ("koboldcpp/Yi-1.5-9B-Chat-Q4_K_M", "chatml"),
        ("koboldcpp/Meta-Llama-3.1-8B-Instruct-Q4_K_M", "llama3"),
        ("koboldcpp/llama3-8b-instruct", "llama3"),
        ("koboldcpp/gemma-2-9b-it-Q4_K_M", "gemma"),
        ("koboldcpp/Mistral-7B-Instruct-v0.3.Q4_K_M", "mistral"),
        ("koboldcpp/Mixtral-8x7B-Instruct-v0.1", "mistral"),
        ("koboldcpp/Phi-3-mini-4k-instruct-q4", "phi3"),
        ("koboldcpp/Phi-3.5-mini-instruct", "phi3"),
        ("koboldcpp/alpaca-7b-native.Q4_0", "alpaca"),
        ("koboldcpp/vicuna-13b-v1.5.Q4_K_M", "vicuna"),
        ("koboldcpp/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M", "deepseek"),
        ("koboldcpp/c4ai-command-r-v01-Q4_K_M", "command-r"),
        ("koboldcpp/aya-expanse-8b-Q4_K_M", "command-r"),
    ],
)
def test_model_names_pick_their_format(model, template):
    """Known model families get their format; fine-tunes win over their base model."""
    choice = choose_template("auto", model=model, version="1.76")
    assert (choice.template.name, choice.source) == (template, "model")
    assert choice.reason.startswith(f"model name {model!r} matched pattern ")


def test_an_unknown_model_falls_back_to_chatml():
    """No pattern matches: ChatML, and the reason says so."""
    choice = choose_template("auto", model="koboldcpp/tinyllama-1.1b", version="1.76")
    assert (choice.template.name, choice.source) == ("chatml", "fallback")
    assert "tinyllama" in choice.reason


def test_a_pattern_starts_a_word():
    """ "yi" (ChatML) is not found inside another word."""
    choice = choose_template("auto", model="koboldcpp/daisyish-7b", version="1.76")
    assert choice.source == "fallback"


@pytest.mark.parametrize("version", ["1.94", "1.102", "1.117.1"])
def test_koboldcpp_with_placeholders_applies_its_own_template(version):
    """From 1.94 on the server template is chosen, whatever the model."""
    choice = choose_template("auto", model="koboldcpp/gemma-2-9b-it", version=version)
    assert (choice.template.name, choice.source) == ("server", "server")
    assert f"KoboldCpp {version} fills the {{{{[INPUT]}}}}" in choice.reason


@pytest.mark.parametrize("version", ["1.76", "1.82.4.yr0-ROCm", "", None])
def test_older_or_unknown_versions_use_the_model_name(version):
    """Before 1.94 (or not known) the model name decides."""
    choice = choose_template("auto", model="koboldcpp/gemma-2-9b-it", version=version)
    assert choice.template.name == "gemma"


def test_an_override_wins_over_everything():
    """KOBOLDCPP_CHAT_TEMPLATE=Llama-3 is used as is, and the reason names it."""
    choice = choose_template("Llama-3", model="koboldcpp/SmolLM2", version="1.102")
    assert (choice.template.name, choice.source) == ("llama3", "override")
    assert choice.reason == "KOBOLDCPP_CHAT_TEMPLATE=Llama-3"


def test_an_unknown_override_fails_naming_auto_and_the_templates():
    """A misspelt name fails loudly and lists "auto" among the choices."""
    with pytest.raises(ValueError, match="auto, alpaca, chatml"):
        choose_template("chatmI")


def test_version_tuple_reads_major_and_minor():
    """Versions compare on their first two numbers."""
    assert version_tuple("1.102.2") == (1, 102)
    assert version_tuple("1.82.4.yr0-ROCm") == (1, 82)
    assert version_tuple("KoboldCpp") == ()


async def test_auto_template_is_chosen_once_from_the_model_name(fake_kobold):
    """ "auto" asks /api/v1/model once: SmolLM2 gets ChatML, and later replies ask
    nothing before their generation."""
    svc = service(fake_kobold, template="auto")
    await collect(svc, genkey="T1")
    await collect(svc, genkey="T2")
    paths = [r.path for r in fake_kobold.requests]
    assert paths.count("/api/v1/model") == 1
    assert paths[-1] == paths[-2] == "/api/extra/generate/stream"
    assert (await svc.resolve_template()).reason == (
        "model name 'koboldcpp/SmolLM2-135M-Instruct.Q4_1' matched pattern 'smollm'"
    )
    assert fake_kobold.generations[-1]["prompt"].startswith("<|im_start|>system\n")


async def test_a_llama3_model_gets_the_llama3_prompt_and_stops(make_fake):
    """A Llama 3 model name selects the Llama 3 template, stop sequences included."""
    fake = make_fake(model="koboldcpp/Meta-Llama-3.1-8B-Instruct-Q4_K_M")
    await collect(service(fake, template="auto"))
    body = fake.generations[-1]
    assert body["prompt"].endswith(
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert body["stop_sequence"][:2] == ["<|eot_id|>", "<|start_header_id|>"]


async def test_backend_info_makes_the_choice_the_stream_then_uses(make_fake):
    """backend_info (asked by the prompt builder first) chooses the template from
    what it reads anyway: the reply's stream then asks nothing more."""
    fake = make_fake(model="koboldcpp/gemma-2-2b-it-Q4_K_M")
    svc = service(fake, template="auto")
    await svc.backend_info()
    asked = len(fake.requests)
    await collect(svc)
    assert [r.path for r in fake.requests[asked:]] == ["/api/extra/generate/stream"]
    assert fake.generations[-1]["prompt"].endswith("<start_of_turn>model\n")


async def test_newer_koboldcpp_fills_in_its_own_template(make_fake):
    """From KoboldCpp 1.94 the prompt carries the instruct placeholders, which the
    server replaces with its own adapter's markers, stop sequences too."""
    fake = make_fake(version="1.102", model="koboldcpp/SomethingNew-7B")
    svc = service(fake, api="auto", template="auto")
    await collect(svc)
    body = fake.generations[-1]
    assert body["prompt"] == (
        "{{[SYSTEM]}}Be brief.{{[SYSTEM_END]}}{{[INPUT]}}Hi{{[INPUT_END]}}{{[OUTPUT]}}"
    )
    assert body["replace_instruct_placeholders"] is True
    assert body["stop_sequence"][:3] == [
        "{{[INPUT]}}",
        "{{[OUTPUT]}}",
        "{{[OUTPUT_END]}}",
    ]
    assert (await svc.resolve_template()).source == "server"


async def test_a_template_override_asks_the_backend_nothing(fake_kobold):
    """KOBOLDCPP_CHAT_TEMPLATE=mistral is used as is: no model name is asked."""
    svc = service(fake_kobold, template="mistral")
    await collect(svc)
    assert not any(r.path == "/api/v1/model" for r in fake_kobold.requests)
    assert fake_kobold.generations[-1]["prompt"].endswith("[INST] Hi[/INST]")
