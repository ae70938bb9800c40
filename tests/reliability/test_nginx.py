"""nginx (Debian's package) in front of two Daphne processes, with the site file of
deploy/nginx rendered with the test's ports: sockets, the REST stream and static files."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.chat.conftest import streamed_text
from tests.live_daphne import ROOT, free_port
from tests.reliability.conftest import (
    connect,
    frames_until,
    is_end,
    reply_row,
    slow_script,
    tokens_seen,
)

NGINX = Path("/usr/sbin/nginx")
SITE = ROOT / "deploy" / "nginx" / "koboldchat.conf"
MAIN = ROOT / "deploy" / "nginx" / "test-template.conf"
COLLECT = (
    "from django.conf import settings; settings.STATIC_ROOT = {root!r}; "
    "from django.core.management import call_command; "
    "call_command('collectstatic', interactive=False, verbosity=0)"
)

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.skipif(not NGINX.exists(), reason=f"nginx is not installed at {NGINX}"),
]


def render_site(ports: list[int], listen: int, static_root: Path) -> str:
    """The deploy site file with the test's backends, listen port and STATIC_ROOT."""
    site = SITE.read_text()
    site = re.sub(r"(?m)^\s*server 127\.0\.0\.1:\d+;\n", "", site)
    backends = "".join(f"    server 127.0.0.1:{port};\n" for port in ports)
    site = site.replace("upstream koboldchat {\n", "upstream koboldchat {\n" + backends)
    site = re.sub(r"(?m)^(\s*)listen \d+;", rf"\1listen 127.0.0.1:{listen};", site)
    return re.sub(r"alias [^;]+;", f"alias {static_root}/;", site)


@pytest.fixture(scope="module")
def nginx(cluster, tmp_path_factory):
    """nginx in the foreground on a free port; its base URL."""
    prefix = tmp_path_factory.mktemp("nginx")
    for sub in ("logs", "tmp", "static"):
        (prefix / sub).mkdir()
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         COLLECT.format(root=str(prefix / "static"))],
        cwd=ROOT, env=cluster.env, check=True,
    )  # fmt: skip
    port = free_port()
    ports = [cluster.a.port, cluster.b.port]
    (prefix / "site.conf").write_text(render_site(ports, port, prefix / "static"))
    (prefix / "nginx.conf").write_text(MAIN.read_text())
    command = [
        str(NGINX),
        "-p",
        f"{prefix}/",
        "-e",
        "logs/error.log",
        "-c",
        "nginx.conf",
    ]
    subprocess.run([*command, "-t", "-q"], check=True)
    process = subprocess.Popen([*command, "-g", "daemon off;"])
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert process.poll() is None, "nginx exited"
        try:
            httpx.get(f"{url}/accounts/login/", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("nginx did not answer")


async def connect_to(nginx: str, key: str, wanted=None, avoid=None, path="/ws/chat/"):
    """A socket through nginx that landed on the wanted process (or not on `avoid`)."""
    for _ in range(10):
        sock = await connect(nginx.replace("http", "ws"), key, path)
        upstream = sock.response.headers.get("X-Upstream", "")
        port = int(upstream.rsplit(":", 1)[1])
        if port != avoid and wanted in (None, port):
            return sock, port
        await sock.close()
    raise AssertionError("nginx never sent the socket to the other process")


async def test_sockets_through_nginx_reach_both_processes(cluster, nginx):
    """Two users' sockets, spread over both processes by nginx (/ws/ and /api/ws/),
    both stream their replies in full, equal to what is stored."""
    keys = cluster.users(2)
    first, port = await connect_to(nginx, keys[0])
    second, other = await connect_to(nginx, keys[1], avoid=port, path="/api/ws/chat")
    async with first, second:
        await first.send("hello from the first user")
        await second.send("hello from the second user")
        seen = [await frames_until(s, is_end, timeout=20) for s in (first, second)]
    assert {port, other} == {cluster.a.port, cluster.b.port}
    for frames in seen:
        end = frames[-1]
        assert end["status"] == "complete"
        assert streamed_text(frames, end["message_id"]) == end["content"]
        assert (
            reply_row(cluster.database_url, end["message_id"])["content"]
            == end["content"]
        )


async def test_client_moved_to_the_other_process_resumes_without_gap(cluster, nginx):
    """A client that reconnects mid-reply and is sent by nginx to the other process gets
    a snapshot and the rest of the reply: every character once."""
    cluster.fake.push(slow_script(60, 0.05))
    (key,) = cluster.users(1)
    sock, port = await connect_to(nginx, key)
    async with sock:
        await sock.send("hello")
        first = await frames_until(sock, tokens_seen(5))
    message_id = first[-1]["message_id"]
    sock, other = await connect_to(nginx, key, avoid=port)
    async with sock:
        second = await frames_until(sock, is_end)
    stored = reply_row(cluster.database_url, message_id)
    assert other != port
    assert second[0]["type"] == "snapshot" and second[0]["status"] == "streaming"
    assert second[0]["content"].startswith(streamed_text(first, message_id))
    assert streamed_text(second, message_id) == stored["content"]
    assert stored["content"] == "".join(slow_script(60).tokens)


async def test_rest_stream_through_nginx_is_not_buffered(cluster, nginx):
    """POST /api/simple-chat/ with stream: the first token event arrives through nginx
    while the reply is still being written, not all at once at the end."""
    cluster.fake.push(slow_script(20, 0.1))
    (key,) = cluster.users(1)
    arrivals: list[tuple[float, dict]] = []
    async with httpx.AsyncClient(timeout=8) as client:
        async with client.stream(
            "POST",
            f"{nginx}/api/simple-chat/",
            json={"message": "stream it", "stream": True},
            headers={"Authorization": f"Bearer {key}"},
        ) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    arrivals.append((time.monotonic(), json.loads(line[6:])))
    frames = [frame for _, frame in arrivals]
    first_token = next(t for t, f in arrivals if f["type"] == "token")
    end_at, end = next((t, f) for t, f in arrivals if f["type"] == "end")
    assert end_at - first_token > 1.0
    assert streamed_text(frames, end["message_id"]) == end["content"]
    assert end["content"] == "".join(slow_script(20).tokens)


def test_static_files_are_served_by_nginx(nginx):
    """/static/ comes from STATIC_ROOT (collectstatic) without reaching Daphne."""
    response = httpx.get(f"{nginx}/static/chat/app.js")
    assert response.status_code == 200
    assert (
        response.content == (ROOT / "chat" / "static" / "chat" / "app.js").read_bytes()
    )
    assert not response.headers.get("X-Upstream")
