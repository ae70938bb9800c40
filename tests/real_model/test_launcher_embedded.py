"""`make run` with no KoboldCpp: the launcher serves the embedded model and stops it."""

import os
import subprocess
import sys

import httpx
import pytest

from koboldchat import embedded_model
from tests.chat.test_launcher import ROOT, _launch, _read_until, _stop

pytestmark = [pytest.mark.real_model, pytest.mark.multiprocess]


def test_launcher_starts_and_stops_the_embedded_model(tmp_path):
    """Nothing at KOBOLDCPP_URL: the model server starts, the app runs, both stop."""
    process, port = _launch(
        tmp_path,
        KOBOLDCPP_URL=f"http://127.0.0.1:{embedded_model.free_port()}",
        DJANGO_SUPERUSER_USERNAME="boss",
        DJANGO_SUPERUSER_PASSWORD="a-long-pass-123",
    )
    try:
        output = _read_until(process, "koboldchat is ready", timeout=120)
        model_url = output.split("Embedded model ready at ")[1].split()[0]
        models = httpx.get(f"{model_url}/v1/models", timeout=5).json()
        assert models["data"][0]["id"] == "SmolLM2-135M-Instruct.Q4_1"
        health = httpx.get(  # the details are for a logged-in caller or a key
            f"http://127.0.0.1:{port}/api/simple-chat/health",
            headers={"Authorization": f"Bearer {_api_key(tmp_path, 'boss')}"},
            timeout=10,
        )
        backend = health.json()["backend"]
        assert backend["reachable"] and backend["api"] == "openai"
        assert backend["label"] == "embedded model SmolLM2-135M-Instruct (llama.cpp)"
    finally:
        assert _stop(process) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{model_url}/v1/models", timeout=2)


def _api_key(tmp_path, username: str) -> str:
    """A key made in the launched app's database (`manage.py create_api_key`)."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    done = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", username],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()
