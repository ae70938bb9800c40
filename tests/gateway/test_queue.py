"""API requests are reply jobs like the page's: they wait in the one FIFO backend queue
(comment keep-alives meanwhile), and a caller hanging up mid-stream stops the reply with
KoboldCpp aborted by its genkey."""

import asyncio

import openai
import pytest
from asgiref.sync import sync_to_async

from chat import services
from chat.models import ApiKey, Message
from kobold_fake.script import Script
from tests.chat.conftest import frames_until, message_row, open_socket
from tests.gateway.conftest import BASE_URL, asgi_client

pytestmark = pytest.mark.django_db(transaction=True)
MODEL = "koboldcpp"
SLOW = Script(tokens=[f" w{i}" for i in range(40)], delay=0.1)


def says(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


async def test_closing_mid_stream_aborts_upstream_by_genkey(
    client, kobold_settings, fake_kobold
):
    """The client closes the stream after the first words: the fake is asked to abort
    that stream's genkey, and the reply is kept as stopped with its partial text."""
    fake_kobold.push(SLOW)
    stream = await client.chat.completions.create(
        model=MODEL, messages=says("tell me a long story"), stream=True
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    await stream.close()
    genkey = fake_kobold.generations[-1]["genkey"]
    assert await fake_kobold.await_until(lambda: genkey in fake_kobold.aborts)
    reply = await sync_to_async(Message.objects.get)(role="assistant")
    for _ in range(100):
        if not reply.is_pending:
            break
        await asyncio.sleep(0.05)
        reply = await message_row(reply.pk)
    assert reply.status == "stopped" and reply.genkey == genkey
    assert 0 < len(reply.content) < len("".join(SLOW.tokens))


async def test_revoking_the_key_ends_its_open_stream(
    client, ada, kobold_settings, fake_kobold
):
    """A key revoked while its stream runs: the stream ends with an error (the client
    raises) and the reply is stopped, KoboldCpp aborted by its genkey."""
    fake_kobold.push(SLOW)
    stream = await client.chat.completions.create(
        model=MODEL, messages=says("tell me a long story"), stream=True
    )
    with pytest.raises(openai.APIError, match="revoked"):
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                await sync_to_async(services.api_keys_revoke)(
                    keys=ApiKey.objects.filter(user=ada)
                )
    genkey = fake_kobold.generations[-1]["genkey"]
    assert await fake_kobold.await_until(lambda: genkey in fake_kobold.aborts)


async def test_closing_a_whole_request_early_aborts_it(
    ada_key, kobold_settings, fake_kobold
):
    """A non-streamed request whose caller hangs up is stopped and aborted too."""
    fake_kobold.push(SLOW)
    async with asgi_client() as http:
        request = asyncio.create_task(
            http.post(
                f"{BASE_URL}/chat/completions",
                headers={"Authorization": f"Bearer {ada_key}"},
                json={"model": MODEL, "messages": says("long, please")},
            )
        )
        assert await fake_kobold.await_until(lambda: fake_kobold.generations)
        request.cancel()
        genkey = fake_kobold.generations[-1]["genkey"]
        assert await fake_kobold.await_until(lambda: genkey in fake_kobold.aborts)


async def _stream_lines(raw_key: str, text: str, lines: list[str]) -> None:
    async with asgi_client() as http:
        async with http.stream(
            "POST",
            f"{BASE_URL}/chat/completions",
            headers={"Authorization": f"Bearer {raw_key}"},
            json={"model": MODEL, "messages": says(text), "stream": True},
        ) as response:
            async for line in response.aiter_lines():
                lines.append(line)


async def test_api_clients_and_a_page_user_share_one_fifo_queue(
    make_user, make_client, kobold_settings, fake_kobold
):
    """API client A is generating; the page user, then API client B, wait in turn (B
    sees `: keep-alive` comments while it waits) and KoboldCpp gets them in that order,
    one at a time."""
    kobold_settings.GATEWAY_KEEPALIVE_SECONDS = 0.2
    fake_kobold.push(Script(tokens=["a"] * 30, delay=0.1), Script(), Script())
    keys = [
        await sync_to_async(ApiKey.generate)(user=await sync_to_async(make_user)())
        for _ in range(3)
    ]
    first = make_client(keys[0][1])
    a = asyncio.create_task(
        first.chat.completions.create(model=MODEL, messages=says("from A"))
    )
    assert await fake_kobold.await_until(lambda: fake_kobold.generations)
    page = await open_socket(keys[1][1])
    await page.send_to(text_data="from the page")
    await frames_until(page, lambda f: f["type"] == "queued")
    b_lines: list[str] = []
    b = asyncio.create_task(_stream_lines(keys[2][1], "from B", b_lines))
    for _ in range(200):
        if ": keep-alive" in b_lines:
            break
        await asyncio.sleep(0.02)
    assert ": keep-alive" in b_lines and len(fake_kobold.generations) == 1
    assert (await a).choices[0].message.content == "a" * 30
    await frames_until(page, lambda f: f["type"] == "end")
    await b
    await page.disconnect()
    prompts = [body["prompt"] for body in fake_kobold.generations]
    order = ["from A", "from the page", "from B"]
    assert [next(i for i, p in enumerate(prompts) if t in p) for t in order] == [
        0,
        1,
        2,
    ]
    assert fake_kobold.max_concurrent_generations == 1
    assert [line for line in b_lines if line][-1] == "data: [DONE]"


async def test_a_second_request_of_one_user_waits_no_reply_slot(
    client, kobold_settings, fake_kobold
):
    """One reply at a time per user (as on the page): a second concurrent request is
    told 429 with Retry-After instead of queueing behind its own."""
    fake_kobold.push(Script(tokens=["x"] * 10, delay=0.05))
    first = asyncio.create_task(
        client.chat.completions.create(model=MODEL, messages=says("one"))
    )
    assert await fake_kobold.await_until(lambda: fake_kobold.generations)
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model=MODEL, messages=says("two"))
    assert caught.value.response.headers["Retry-After"]
    assert (await first).choices[0].message.content == "x" * 10
