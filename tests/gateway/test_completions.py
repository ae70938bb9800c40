"""/v1/models, /v1/chat/completions and /v1/completions through the official `openai`
client, against the fake KoboldCpp: answers, streams, usage, and the request the
backend receives."""

import pytest

from kobold_fake.script import Script

pytestmark = pytest.mark.django_db(transaction=True)
MODEL = "koboldcpp/SmolLM2-135M-Instruct.Q4_1"


async def test_model_list_names_the_backend_model(client, kobold_settings):
    """GET /v1/models lists the one model KoboldCpp serves."""
    page = await client.models.list()
    assert [model.id for model in page.data] == [MODEL]
    assert page.data[0].owned_by == "koboldcpp"


async def test_chat_completion_answers_the_reply_with_usage(
    client, kobold_settings, fake_kobold
):
    """A non-streamed chat completion answers the reply, finish_reason and usage."""
    answer = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "coucou"}]
    )
    assert answer.choices[0].message.content == "Hello there!"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.completion_tokens > 0 and answer.usage.prompt_tokens > 0
    assert answer.usage.total_tokens == (
        answer.usage.prompt_tokens + answer.usage.completion_tokens
    )


async def test_messages_and_samplers_reach_the_backend_as_given(
    client, kobold_settings, fake_kobold
):
    """The system message and the turns are sent in the backend's prompt format; the
    sampler settings reach KoboldCpp under its own names."""
    await client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "You are a pirate."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Arr."},
            {"role": "user", "content": "Where is the gold?"},
        ],
        temperature=0.3,
        top_p=0.5,
        max_tokens=42,
        stop=["END"],
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=0.2,
    )
    body = fake_kobold.generations[-1]
    prompt = body["prompt"]
    assert prompt.index("You are a pirate.") < prompt.index("Hi") < prompt.index("Arr.")
    assert prompt.index("Arr.") < prompt.index("Where is the gold?")
    assert body["temperature"] == 0.3 and body["top_p"] == 0.5
    assert body["max_length"] == 42 and "END" in body["stop_sequence"]
    assert body["sampler_seed"] == 7 and body["presence_penalty"] == 0.5
    assert body["rep_pen"] == pytest.approx(1.2)
    assert body["genkey"].startswith("kc-")


async def test_streamed_chat_completion_rebuilds_the_reply(
    client, kobold_settings, fake_kobold
):
    """stream=True gives OpenAI chunks whose deltas join to the reply, a last chunk
    with finish_reason, and (include_usage) a usage chunk."""
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "coucou"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there!"
    assert chunks[0].choices[0].delta.role == "assistant"
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert reasons[-1] == "stop" and set(reasons[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert {c.id for c in chunks} == {chunks[0].id}


async def test_text_completion_continues_the_prompt_as_is(
    client, kobold_settings, fake_kobold
):
    """/v1/completions sends the prompt without a chat template and answers its
    continuation, whole or streamed."""
    fake_kobold.push(Script(tokens=["upon", " a time"]), Script(tokens=["a", "b"]))
    answer = await client.completions.create(model=MODEL, prompt="Once ", max_tokens=10)
    assert answer.choices[0].text == "upon a time"
    assert fake_kobold.generations[-1]["prompt"] == "Once "
    assert answer.usage.completion_tokens > 0
    stream = await client.completions.create(
        model=MODEL, prompt="x", max_tokens=10, stream=True
    )
    texts = [chunk.choices[0].text async for chunk in stream]
    assert "".join(texts) == "ab"


async def test_reasoning_comes_as_reasoning_content(
    client, kobold_settings, fake_kobold
):
    """A model's thinking comes apart, as `reasoning_content`, streamed and whole."""
    thought = ["<think>", "Let me see.", "</think>", "Four."]
    fake_kobold.push(Script(tokens=thought), Script(tokens=thought))
    messages = [{"role": "user", "content": "2+2?"}]
    answer = await client.chat.completions.create(model=MODEL, messages=messages)
    said = answer.choices[0].message
    assert said.content == "Four."
    assert said.model_extra["reasoning_content"] == "Let me see."
    stream = await client.chat.completions.create(
        model=MODEL, messages=messages, stream=True
    )
    deltas = [c.choices[0].delta async for c in stream if c.choices]
    thinking = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    assert thinking == "Let me see."
    assert "".join(d.content or "" for d in deltas) == "Four."
