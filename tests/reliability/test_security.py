"""Security checks not covered by the chat tests: Django's deployment checklist with the
production settings of .env.example, no secret in any log, API keys hashed at rest."""

import hashlib
import hmac
import logging
import subprocess
import sys

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

import koboldchat.asgi  # noqa: F401  (its django.setup() redoes logging: before caplog)
from chat.models import ApiKey
from kobold_fake.server import FakeKobold
from tests.chat.conftest import frames_until, is_end, open_socket
from tests.live_daphne import ROOT, server_env
from tests.reliability.conftest import slow_script

PASSWORD = "kobold-pw-that-must-never-be-logged"


def env_example() -> dict[str, str]:
    """The variables .env.example sets (commented-out lines excluded)."""
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            pairs[name.strip()] = value.strip()
    return pairs


def test_check_deploy_is_clean_with_the_production_settings_of_env_example():
    """`manage.py check --deploy` reports nothing (not even a warning) for the
    production block of .env.example."""
    env = server_env(**{**env_example(), "DJANGO_DEBUG": "off"})
    env.pop("DJANGO_HTTPS", None)  # .env.example leaves it at its default: https
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNINGS" not in done.stderr + done.stdout


@pytest.fixture
def protected_kobold(settings):
    server = FakeKobold(password=PASSWORD)
    server.default_script = slow_script(40, 0.02)
    server.start()
    settings.KOBOLDCPP_URL, settings.KOBOLDCPP_API = server.url, "native"
    settings.KOBOLDCPP_PASSWORD, settings.INTENT_DETECTION = PASSWORD, "heuristic"
    yield server
    server.stop()


@pytest.mark.django_db(transaction=True)
async def test_no_secret_in_logs(protected_kobold, caplog):
    """A reply and a stop (abort) with KOBOLDCPP_PASSWORD and an API key, plus a refused
    wrong key, all logged at DEBUG: neither the password nor any key appears."""
    for name in ("", "agents", "chat", "httpx", "httpcore", "django", "channels"):
        caplog.set_level(logging.DEBUG, logger=name or None)
    user = await sync_to_async(get_user_model().objects.create_user)("logged")
    _, raw = await sync_to_async(ApiKey.generate)(user=user)
    comm = await open_socket(raw)
    await comm.send_to(text_data="first question")
    await frames_until(comm, is_end)
    await comm.send_to(text_data="second question")
    token = await frames_until(comm, lambda f: f["type"] == "token")
    await comm.send_json_to({"type": "stop", "message_id": token[-1]["message_id"]})
    await frames_until(comm, is_end)
    await comm.disconnect()
    refused = await open_socket(raw[:-1] + ("x" if raw[-1] != "x" else "y"))
    assert not refused.connected
    assert protected_kobold.aborts, "the stop never reached KoboldCpp"
    text = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert len(caplog.records) > 10
    for secret in (PASSWORD, raw, raw.split("_", 2)[2]):
        assert secret not in text


@pytest.mark.django_db
def test_api_key_row_holds_only_a_hash():
    """No column of the stored key holds the raw key or its secret part."""
    user = get_user_model().objects.create_user("hashed")
    key, raw = ApiKey.generate(user=user)
    row = ApiKey.objects.filter(pk=key.pk).values().get()
    assert row["key_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    secret = raw.split("_", 2)[2]
    assert not any(secret in str(value) or raw in str(value) for value in row.values())


@pytest.mark.django_db
def test_api_key_is_compared_in_constant_time(monkeypatch):
    """The right key is accepted through hmac.compare_digest; one character changed,
    anywhere in the secret, is refused."""
    user = get_user_model().objects.create_user("timing")
    _, raw = ApiKey.generate(user=user)
    calls = []

    def recording(a, b):
        calls.append((a, b))
        return real(a, b)

    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", recording)
    assert ApiKey.user_for(raw) == user
    assert calls == [(ApiKey.hash_key(raw),) * 2]
    first = len("kc_") + ApiKey.PREFIX_LEN + 1  # the secret's first character
    for position in (first, (first + len(raw)) // 2, len(raw) - 1):
        flipped = "A" if raw[position] != "A" else "B"
        assert ApiKey.user_for(raw[:position] + flipped + raw[position + 1 :]) is None
    assert len(calls) == 4
