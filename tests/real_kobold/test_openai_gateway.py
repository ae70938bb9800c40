"""The OpenAI-compatible endpoint against a real KoboldCpp, through the official
`openai` client: the model list names the served model, and a streamed chat completion
arrives in chunks ending with a finish reason and usage."""

import pytest
from asgiref.sync import sync_to_async

from chat.models import ApiKey, Conversation, Message
from tests.gateway.conftest import (  # noqa: F401  (the client fixtures)
    ada,
    ada_key,
    client,
    make_client,
)

pytestmark = [pytest.mark.real_kobold, pytest.mark.django_db(transaction=True)]


async def test_model_list_and_streamed_completion(client):  # noqa: F811
    """The listed model is KoboldCpp's; a streamed answer to it joins to the text
    stored in the key's API conversation, with its usage."""
    page = await client.models.list()
    [model] = page.data
    assert model.id.startswith("koboldcpp/")
    stream = await client.chat.completions.create(
        model=model.id,
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Name a colour."},
        ],
        max_tokens=24,
        temperature=0.2,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert reasons[-1] in ("stop", "length")
    assert chunks[-1].usage.completion_tokens > 0
    reply = await sync_to_async(Message.objects.get)(role="assistant")
    assert reply.content == text and reply.status == "complete"
    source = await sync_to_async(
        Conversation.objects.values_list("source", flat=True).get
    )()
    assert source == "api"
    assert await sync_to_async(ApiKey.objects.count)() == 1
