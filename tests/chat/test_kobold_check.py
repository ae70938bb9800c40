"""`manage.py kobold_check` against the fake KoboldCpp: what it reports, and each fix."""

import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from kobold_fake.server import Script
from koboldchat.embedded_model import free_port


def run_check(*args: str) -> str:
    """Run the command; return its stdout, or raise CommandError with it attached."""
    out = StringIO()
    try:
        call_command("kobold_check", *args, stdout=out)
    except CommandError as exc:
        exc.output = out.getvalue()
        raise
    return out.getvalue()


def point_at(settings, url: str, *, api: str = "auto", password: str = "") -> None:
    settings.KOBOLDCPP_URL, settings.KOBOLDCPP_URLS = url, []
    settings.KOBOLDCPP_API = api
    settings.KOBOLDCPP_PASSWORD = password
    settings.KOBOLDCHAT_BACKEND_LABEL = ""
    settings.KOBOLDCPP_CHAT_TEMPLATE = "auto"


def test_healthy_backend_reports_everything(settings, fake_kobold):
    """A running KoboldCpp: API, model, version, context, auth and a timed generation."""
    point_at(settings, fake_kobold.url)
    output = run_check()
    assert "API         native" in output
    assert fake_kobold.model in output
    assert "version     1.76" in output
    assert "context     2048 tokens" in output
    assert "auth        not protected" in output
    assert (
        "format      chatml (model name 'koboldcpp/SmolLM2-135M-Instruct.Q4_1' "
        "matched pattern 'smollm')"
    ) in output
    assert "'Hello there!'" in output
    assert "first token" in output and "3 tokens" in output
    assert "OK:" in output
    assert fake_kobold.generations, "the check must really generate"


def test_every_backend_of_a_pool_is_checked(settings, fake_kobold, make_fake):
    """KOBOLDCPP_URLS: each backend gets its report and its test generation; one that
    does not answer fails the check, naming it, after the others were checked."""
    other = make_fake(model="koboldcpp/Other-7B")
    point_at(settings, fake_kobold.url)
    settings.KOBOLDCPP_URLS = [other.url, f"http://127.0.0.1:{free_port()}"]
    with pytest.raises(CommandError, match="1 of 3 backends failed") as caught:
        run_check()
    output = caught.value.output
    assert f"at {fake_kobold.url}" in output and f"at {other.url}" in output
    assert "koboldcpp/Other-7B" in output and "nothing answers" in output
    assert fake_kobold.generations and other.generations


def test_llamacpp_server_is_checked_over_the_openai_api(settings, make_fake):
    """An OpenAI-compatible server (llama-cpp-python) passes with API openai."""
    server = make_fake(flavor="llamacpp")
    point_at(settings, server.url)
    output = run_check()
    assert "API         openai" in output
    assert "format      the server's own (OpenAI API)" in output
    assert "OK:" in output


def test_nothing_running_says_how_to_start_koboldcpp(settings):
    """No server: non-zero exit and the KoboldCpp command line for the configured port."""
    port = free_port()
    point_at(settings, f"http://127.0.0.1:{port}")
    with pytest.raises(CommandError, match="nothing answers") as caught:
        run_check()
    assert "python3 koboldcpp.py --model" in caught.value.output
    assert f"--port {port}" in caught.value.output


def test_protected_without_password_says_to_set_it(settings, make_fake):
    """A protected KoboldCpp and no KOBOLDCPP_PASSWORD: the fix names the variable."""
    server = make_fake(password="s3cret")
    point_at(settings, server.url)
    with pytest.raises(CommandError) as caught:
        run_check()
    assert "protected, KOBOLDCPP_PASSWORD not set" in caught.value.output
    assert "set KOBOLDCPP_PASSWORD to the --password" in caught.value.output


def test_wrong_password_is_reported_as_refused(settings, make_fake):
    """A wrong password fails with the auth state "refused" and says to correct it."""
    server = make_fake(password="s3cret")
    point_at(settings, server.url, password="wrong")
    with pytest.raises(CommandError, match="refused") as caught:
        run_check()
    assert "KOBOLDCPP_PASSWORD set and refused" in caught.value.output
    assert "exactly the --password" in caught.value.output


def test_right_password_is_reported_as_accepted(settings, make_fake):
    """The right password passes, and the report says it was accepted."""
    server = make_fake(password="s3cret")
    point_at(settings, server.url, password="s3cret")
    assert "protected, KOBOLDCPP_PASSWORD set and accepted" in run_check()


def test_hanging_server_fails_within_the_timeout(settings, make_fake):
    """A server that accepts but never answers fails after --timeout, not forever."""
    server = make_fake(hang=True)
    point_at(settings, server.url, api="native")
    began = time.monotonic()
    with pytest.raises(CommandError) as caught:
        run_check("--timeout", "0.5")
    assert time.monotonic() - began < 5
    assert "sent no answer within 0.5 s" in caught.value.output
    assert "restart it" in caught.value.output


def test_stalled_generation_fails_and_is_aborted(settings, fake_kobold):
    """A generation with no first token fails after --generation-timeout and is aborted."""
    fake_kobold.push(Script(fault="stall_before_first"))
    point_at(settings, fake_kobold.url, api="native")
    with pytest.raises(CommandError, match="no answer within 0.5 s"):
        run_check("--generation-timeout", "0.5")
    assert fake_kobold.aborts == [fake_kobold.generations[-1]["genkey"]]


def test_an_override_is_reported_as_such(settings, fake_kobold):
    """KOBOLDCPP_CHAT_TEMPLATE names the format, and the report says it was set."""
    point_at(settings, fake_kobold.url)
    settings.KOBOLDCPP_CHAT_TEMPLATE = "llama3"
    assert "format      llama3 (KOBOLDCPP_CHAT_TEMPLATE=llama3)" in run_check()
    assert "<|start_header_id|>" in fake_kobold.generations[-1]["prompt"]


def test_newer_koboldcpp_is_reported_applying_its_own_template(settings, make_fake):
    """On KoboldCpp 1.102 the format is the server's, through its placeholders."""
    server = make_fake(version="1.102")
    point_at(settings, server.url)
    output = run_check()
    assert (
        "format      server (KoboldCpp 1.102 fills the {{[INPUT]}}/{{[OUTPUT]}} "
        "placeholders with its own template)"
    ) in output
