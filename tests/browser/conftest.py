"""A live koboldchat for the browser tests: Daphne in a subprocess (HTTP + WebSocket) on
a file SQLite database, talking to the fake KoboldCpp; and Debian's Chromium."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from kobold_fake.server import FakeKobold

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
PASSWORD = "browser-pw-1234"
USERS = ("alice", "bob")


@pytest.fixture(scope="session", autouse=True)
def _chromium_installed():
    """Skip (not fail) where the browser is missing; .ci/run installs it with apt."""
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian's chromium is not installed at /usr/bin/chromium "
            "(apt-get install chromium)"
        )


@dataclass
class LiveServer:
    url: str
    kobold: FakeKobold
    process: subprocess.Popen


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(database: Path, kobold_url: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="koboldchat.settings",
        DJANGO_DEBUG="1",
        DATABASE_URL=f"sqlite:///{database}",
        KOBOLDCPP_URL=kobold_url,
        KOBOLDCPP_API="native",
        KOBOLDCPP_PASSWORD="",
        INTENT_DETECTION="heuristic",
        KOBOLDCHAT_EMBEDDED_MODEL="off",
        CHAT_RATE_LIMIT_PER_MINUTE="1000",
        LOG_LEVEL="WARNING",
    )
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
        capture_output=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="session")
def template_database(tmp_path_factory) -> Path:
    """Migrated once, with the test users; each test gets a copy."""
    database = tmp_path_factory.mktemp("browser-db") / "template.sqlite3"
    env = _environment(database, "http://127.0.0.1:9")
    _manage(env, "migrate", "--noinput")
    create = "; ".join(
        f"get_user_model().objects.create_user({name!r}, password={PASSWORD!r})"
        for name in USERS
    )
    _manage(
        env, "shell", "-c", f"from django.contrib.auth import get_user_model; {create}"
    )
    return database


def _wait_until_up(
    url: str, process: subprocess.Popen, log: Path, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/accounts/login/", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("daphne did not answer in time")


@pytest.fixture
def server_env() -> dict[str, str]:
    """More environment for the Daphne under test (a test module may override this)."""
    return {}


@pytest.fixture
def chat_server(template_database, tmp_path, fake_kobold, server_env) -> LiveServer:
    """Daphne serving the whole app (HTTP and /ws/chat/) against the fake KoboldCpp."""
    database = tmp_path / "db.sqlite3"
    shutil.copy(template_database, database)
    port = _free_port()
    env = _environment(database, fake_kobold.url) | server_env
    log = tmp_path / "daphne.log"  # a file, not a pipe: a full pipe would block Daphne
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "koboldchat.asgi:application"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield LiveServer(url=url, kobold=fake_kobold, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(autouse=True)
def _fresh_llm_client():
    """Replaces the suite's async fixture: Playwright's sync API owns this thread's event
    loop here, and the LLM client is only used inside the Daphne subprocess."""
    yield


@pytest.fixture(scope="module")
def browser():
    """Chromium, per module: Playwright's loop must be gone before async tests run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser):
    """Pages in fresh browser contexts (own cookies), closed after the test."""
    contexts = []

    def make(**options):
        options.setdefault("locale", "en-US")
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = browser.new_context(**options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    """Save a screenshot under artifacts/screenshots/ (kept by CI, never committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return save
