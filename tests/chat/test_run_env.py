"""The environment of the run command: production mode over plain HTTP on this machine,
a secret key made once and kept, and the refusal of a local user on a public address."""

import os
import stat

import pytest

from koboldchat import run_env

RUN_VARIABLES = (
    "DJANGO_DEBUG", "DJANGO_HTTPS", "DJANGO_ALLOWED_HOSTS", "DJANGO_SECRET_KEY",
    "KOBOLDCHAT_HOSTS", "KOBOLDCHAT_RUN_DIR",
)  # fmt: skip


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No run variable set; the run folder and an absent .env in tmp_path. The run
    command fills os.environ itself: every variable is put back as it was after."""
    for name in RUN_VARIABLES:
        monkeypatch.setenv(name, "")  # recorded, so restored (or removed) afterwards
        monkeypatch.delenv(name)
    monkeypatch.setenv("KOBOLDCHAT_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setattr(run_env, "ROOT", tmp_path)
    return tmp_path / "run"


def test_the_secret_key_is_made_once_and_kept(tmp_path):
    """The first start writes it (readable by its owner only); later starts reuse it."""
    first = run_env.secret_key(tmp_path / "run")
    assert len(first) >= 50
    assert run_env.secret_key(tmp_path / "run") == first
    mode = stat.S_IMODE((tmp_path / "run" / "secret_key").stat().st_mode)
    assert mode == 0o600


def test_run_defaults_are_production_over_plain_http(clean_env):
    run_env.apply_run_environment()
    assert os.environ["DJANGO_DEBUG"] == "off"
    assert os.environ["DJANGO_HTTPS"] == "off"
    assert os.environ["DJANGO_ALLOWED_HOSTS"] == "localhost,127.0.0.1"
    assert os.environ["DJANGO_SECRET_KEY"] == run_env.secret_key(clean_env)


def test_the_environment_wins(clean_env, monkeypatch):
    """KOBOLDCHAT_HOSTS names the hosts; a key given in the environment is kept."""
    monkeypatch.setenv("KOBOLDCHAT_HOSTS", "chat.lan,localhost")
    monkeypatch.setenv("DJANGO_SECRET_KEY", "given-" * 10)
    run_env.apply_run_environment()
    assert os.environ["DJANGO_ALLOWED_HOSTS"] == "chat.lan,localhost"
    assert os.environ["DJANGO_SECRET_KEY"] == "given-" * 10
    assert not clean_env.exists()


def test_dev_keeps_debug_on(clean_env, monkeypatch):
    """`make dev` (DJANGO_DEBUG=on): the development settings, nothing generated."""
    monkeypatch.setenv("DJANGO_DEBUG", "on")
    run_env.apply_run_environment()
    assert "DJANGO_SECRET_KEY" not in os.environ
    assert "DJANGO_HTTPS" not in os.environ


@pytest.mark.parametrize(
    ("bind", "refused"),
    [("127.0.0.1", False), ("::1", False), ("localhost", False), ("0.0.0.0", True),
     ("192.168.1.5", True)],
)  # fmt: skip
def test_a_local_user_needs_a_loopback_address(bind, refused):
    assert (run_env.start_refusal(bind, "me") is not None) is refused
    assert run_env.start_refusal(bind, "") is None
