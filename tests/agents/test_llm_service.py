"""LLMService against the fake KoboldCpp: streams, errors, abort, token counts, info."""

import pytest

from agents.errors import (
    BackendAuthError,
    BackendBusy,
    BackendProtocolError,
    BackendUnreachable,
)
from agents.events import BusyRetry, Finished, TextDelta
from agents.llm_service import LLMService
from kobold_fake.server import Script
from kobold_fake.wire import LLAMACPP_MODEL, token_ids
from tests.agents.services import MESSAGES, SETTINGS, closed_port, collect, service


async def test_native_stream_yields_deltas_then_finished(fake_kobold):
    """The native stream gives each token as a delta, then the finish reason."""
    fake_kobold.push(Script(tokens=["Hel", "lo", " é"], finish_reason="stop"))
    events = await collect(service(fake_kobold))
    assert events == [
        TextDelta("Hel"),
        TextDelta("lo"),
        TextDelta(" é"),
        Finished("stop"),
    ]
    assert fake_kobold.requests[-1].path == "/api/extra/generate/stream"


async def test_native_body_has_prompt_genkey_and_stops(fake_kobold):
    """The native body has the ChatML prompt, genkey, all stops and trim_stop."""
    await collect(service(fake_kobold), genkey="KEY-42")
    body = fake_kobold.generations[-1]
    assert body["genkey"] == "KEY-42"
    assert body["prompt"].endswith(
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    assert body["stop_sequence"] == ["<|im_end|>", "<|im_start|>", "\nUser:"]
    assert body["trim_stop"] is True
    assert body["max_length"] == 50


async def test_native_body_sends_the_known_context_size(make_fake):
    """Once backend_info has read the true context size, streams send it."""
    fake = make_fake(max_context=4096)
    svc = service(fake)
    await svc.backend_info()
    await collect(svc)
    assert fake.generations[-1]["max_context_length"] == 4096


async def test_openai_stream(fake_kobold):
    """api="openai" streams /v1/chat/completions with messages, stream and genkey."""
    fake_kobold.push(Script(tokens=["A", "B"], finish_reason="length"))
    events = await collect(service(fake_kobold, api="openai"), genkey="OA1")
    assert events == [TextDelta("A"), TextDelta("B"), Finished("length")]
    body = fake_kobold.generations[-1]
    assert fake_kobold.requests[-1].path == "/v1/chat/completions"
    assert body["stream"] is True and body["genkey"] == "OA1"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert body["stop"] == ["\nUser:"] and body["max_tokens"] == 50


async def test_auto_picks_native_on_koboldcpp_and_probes_once(fake_kobold):
    """auto probes /api/extra/version once and uses the native API on KoboldCpp."""
    svc = service(fake_kobold, api="auto")
    assert await svc.resolve_api() == "native"
    await collect(svc)
    probes = [r for r in fake_kobold.requests if r.path == "/api/extra/version"]
    assert len(probes) == 1
    assert fake_kobold.requests[-1].path == "/api/extra/generate/stream"


async def test_auto_picks_openai_on_llama_cpp(make_fake):
    """auto falls back to the OpenAI API when the server is not KoboldCpp."""
    fake = make_fake(flavor="llamacpp")
    svc = service(fake, api="auto")
    events = await collect(svc)
    assert await svc.resolve_api() == "openai"
    assert events[-1] == Finished("stop")
    assert fake.requests[-1].path == "/v1/chat/completions"


async def test_busy_is_retried_then_succeeds(fake_kobold):
    """A 503 before any bytes is retried with backoff, announced by a BusyRetry; the
    next attempt streams."""
    fake_kobold.push(Script(fault="http_503"), Script(tokens=["ok"]))
    events = await collect(service(fake_kobold))
    assert events == [
        BusyRetry(delay=0.25, attempt=1),
        TextDelta("ok"),
        Finished("stop"),
    ]
    assert len(fake_kobold.generations) == 2


async def test_busy_forever_raises_backend_busy(fake_kobold):
    """After busy_retries retries of 503, BackendBusy is raised."""
    fake_kobold.push(*[Script(fault="http_503")] * 3)
    with pytest.raises(BackendBusy):
        await collect(service(fake_kobold, busy_retries=2))
    assert len(fake_kobold.generations) == 3


async def test_wrong_password_raises_auth_error(make_fake):
    """A 401 becomes BackendAuthError."""
    fake = make_fake(password="s3cret")
    with pytest.raises(BackendAuthError):
        await collect(service(fake, password="wrong"))


async def test_password_is_sent_as_bearer(make_fake):
    """The service's password goes out as `Authorization: Bearer <password>`."""
    fake = make_fake(password="s3cret")
    events = await collect(service(fake, password="s3cret"))
    assert events[-1] == Finished("stop")
    assert fake.requests[-1].headers["authorization"] == "Bearer s3cret"


async def test_closed_port_raises_unreachable():
    """Nothing listening gives BackendUnreachable."""
    svc = LLMService(base_url=f"http://127.0.0.1:{closed_port()}", api="native")
    with pytest.raises(BackendUnreachable):
        await collect(svc)


async def test_http_500_is_a_protocol_error_with_status(fake_kobold):
    """Any other status is BackendProtocolError carrying the status."""
    fake_kobold.push(Script(fault="http_500"))
    with pytest.raises(BackendProtocolError) as caught:
        await collect(service(fake_kobold))
    assert caught.value.status == 500


async def test_drop_mid_stream_raises_after_the_partial_deltas(fake_kobold):
    """A native stream cut before its finish yields its deltas, then raises."""
    fake_kobold.push(Script(tokens=["a", "b", "c"], fault="drop_mid", fault_at=2))
    seen = []
    with pytest.raises(BackendProtocolError):
        async for event in service(fake_kobold).stream_chat(
            MESSAGES, settings=SETTINGS, genkey="D1"
        ):
            seen.append(event)
    assert seen == [TextDelta("a"), TextDelta("b")]


async def test_malformed_line_is_skipped(fake_kobold):
    """A malformed SSE line does not end the stream."""
    fake_kobold.push(Script(tokens=["a", "b", "c"], fault="malformed", fault_at=1))
    events = await collect(service(fake_kobold))
    assert events == [TextDelta("a"), TextDelta("b"), TextDelta("c"), Finished("stop")]


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_version_1_102_streams(make_fake, api):
    """KoboldCpp 1.102's forms (JSON null reasons, split final chunk) parse the same."""
    fake = make_fake(version="1.102")
    fake.push(Script(tokens=["x", "y"], finish_reason="stop"))
    events = await collect(service(fake, api=api))
    assert events == [TextDelta("x"), TextDelta("y"), Finished("stop")]


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_generate_returns_the_whole_text(fake_kobold, api):
    """generate() makes one non-streamed request and returns text and finish reason."""
    fake_kobold.push(Script(tokens=["Hel", "lo"], finish_reason="length"))
    done = await service(fake_kobold, api=api).generate(
        MESSAGES, settings=SETTINGS, genkey="G1"
    )
    assert (done.text, done.finish_reason) == ("Hello", "length")
    assert fake_kobold.generations[-1]["genkey"] == "G1"
    assert fake_kobold.generations[-1].get("stream", False) is False


async def test_abort_sends_the_genkey(fake_kobold):
    """abort() posts the genkey; an unknown key is answered "false"."""
    assert await service(fake_kobold).abort("nope") is False
    assert fake_kobold.aborts == ["nope"]


async def test_abort_of_a_running_stream_succeeds(fake_kobold):
    """Aborting the running generation's genkey returns True and ends its stream."""
    fake_kobold.push(Script(tokens=["a"] * 50, delay=0.05))
    svc = service(fake_kobold)
    stream = svc.stream_chat(MESSAGES, settings=SETTINGS, genkey="RUN1")
    assert await anext(stream) == TextDelta("a")
    assert await svc.abort("RUN1") is True
    events = [event async for event in stream]
    assert events[-1] == Finished("length")
    assert fake_kobold.aborts == ["RUN1"]


async def test_abort_tolerates_an_unreachable_backend():
    """abort() on a dead backend logs and returns False instead of raising."""
    svc = LLMService(base_url=f"http://127.0.0.1:{closed_port()}", api="native")
    assert await svc.abort("K") is False


async def test_count_tokens_is_cached(fake_kobold):
    """count_tokens asks /api/extra/tokencount once per text."""
    svc = service(fake_kobold)
    text = "Bonjour, comment ça va ?"
    first = await svc.count_tokens(text)
    requests = len(fake_kobold.requests)
    assert await svc.count_tokens(text) == first
    assert len(fake_kobold.requests) == requests
    assert first == len(token_ids(text, special=False))


async def test_count_tokens_estimates_on_openai_only_backends(make_fake):
    """Without a tokencount endpoint the count is len(text)//4 + 1, with no request."""
    fake = make_fake(flavor="llamacpp")
    svc = service(fake, api="auto")
    assert await svc.count_tokens("x" * 40) == 11
    assert not any(r.path == "/api/extra/tokencount" for r in fake.requests)


async def test_backend_info_of_koboldcpp(make_fake):
    """backend_info reports version, model, true context, auth and load."""
    fake = make_fake(max_context=8192)
    info = await service(fake, api="auto").backend_info()
    assert (info.api, info.version, info.model) == (
        "native",
        "1.76",
        "koboldcpp/SmolLM2-135M-Instruct.Q4_1",
    )
    assert (info.max_context, info.protected, info.idle, info.queue) == (
        8192,
        False,
        True,
        0,
    )
    assert info.latency_ms >= 0 and info.url == fake.url


async def test_backend_info_of_protected_koboldcpp_names_the_model(make_fake):
    """Without the password the model comes from /v1/models; protected is set."""
    fake = make_fake(password="s3cret")
    info = await service(fake).backend_info()
    assert info.protected is True
    assert info.model == "koboldcpp/SmolLM2-135M-Instruct.Q4_1"


async def test_backend_info_of_llama_cpp(make_fake):
    """On an OpenAI-only server the model comes from /v1/models."""
    fake = make_fake(flavor="llamacpp")
    info = await service(fake, api="auto").backend_info()
    assert (info.api, info.model, info.idle, info.queue) == (
        "openai",
        LLAMACPP_MODEL,
        None,
        None,
    )


async def test_from_settings(settings):
    """from_settings reads the KOBOLDCPP_* and LLM_BUSY_RETRIES settings."""
    settings.KOBOLDCPP_URL = "http://127.0.0.1:7777"
    settings.KOBOLDCPP_API = "openai"
    settings.KOBOLDCPP_PASSWORD = "pw"
    settings.KOBOLDCPP_CHAT_TEMPLATE = "llama3"
    settings.LLM_BUSY_RETRIES = 7
    svc = LLMService.from_settings()
    assert (svc.base_url, svc.api, svc.template.name) == (
        "http://127.0.0.1:7777",
        "openai",
        "llama3",
    )
    assert (svc.backend.password, svc.backend.busy_retries) == ("pw", 7)


async def test_requests_are_logged_without_the_password(make_fake, caplog):
    """Each request logs genkey, path and status; the password never appears."""
    fake = make_fake(password="s3cret")
    with caplog.at_level("DEBUG", logger="agents.llm_service"):
        await collect(service(fake, password="s3cret"), genkey="LOG1")
    lines = [record.getMessage() for record in caplog.records]
    assert "POST /api/extra/generate/stream genkey=LOG1 -> 200" in lines
    assert not any("s3cret" in line for line in lines)
