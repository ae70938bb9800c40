"""`make run` serves in production mode over plain HTTP on this machine: no debug pages,
no redirect to https, static files served, a kept secret key; KOBOLDCHAT_LOCAL_USER lets
a script on this machine in without credentials, and is refused on a public address."""

import subprocess
import sys

import httpx
import pytest

from tests.chat.test_launcher import ROOT, _launch, _read_until, _stop

pytestmark = pytest.mark.multiprocess


def test_run_is_production_over_plain_http(tmp_path, fake_kobold):
    process, port = _launch(
        tmp_path, KOBOLDCPP_URL=fake_kobold.url, KOBOLDCHAT_LOCAL_USER="scripter"
    )
    base = f"http://127.0.0.1:{port}"
    try:
        output = _read_until(process, "koboldchat is ready")
        assert "Production mode, debug off." in output
        assert "act as 'scripter'" in output
        login = httpx.get(f"{base}/accounts/login/")
        assert login.status_code == 200  # not a redirect to https
        assert "strict-transport-security" not in login.headers
        assert "secure" not in login.headers.get("set-cookie", "").lower()
        css = httpx.get(f"{base}/static/chat/chat.css")
        assert css.status_code == 200 and ".msg-body" in css.text
        missing = httpx.get(f"{base}/no-such-page/")
        assert missing.status_code == 404
        assert "Back to the chat" in missing.text
        assert "Django" not in missing.text  # no debug page
        # The README's curl line.
        answer = httpx.post(
            f"{base}/api/simple-chat/", json={"message": "coucou"}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["reply"] == "Hello there!"
    finally:
        assert _stop(process) == 0
    key = (tmp_path / "run" / "secret_key").read_text().strip()
    assert len(key) >= 50


def test_a_local_user_on_a_public_address_is_refused(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "koboldchat.launcher"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "KOBOLDCHAT_LOCAL_USER": "scripter",
            "KOBOLDCHAT_BIND": "0.0.0.0",
            "KOBOLDCHAT_RUN_DIR": str(tmp_path / "run"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "not a loopback address" in run.stdout
