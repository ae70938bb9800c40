"""Live servers for the reliability suite: a PostgreSQL database and a Redis db made for
the session, SQLite copies, real Daphne processes, and `websockets` clients with API keys."""

import asyncio
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import websockets

from kobold_fake.server import FakeKobold, Script
from tests.live_daphne import ROOT, DaphneProcess, migrate, server_env

PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
CLUSTER_USERS = 16

MAKE_USERS = """
import json
from django.contrib.auth import get_user_model
from chat.models import ApiKey
keys = {}
for name in NAMES:
    user = get_user_model().objects.create_user(name)
    keys[name] = ApiKey.generate(user=user, name="reliability")[1]
print(json.dumps(keys))
"""


# --- services ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL database of its own (empty: not migrated yet), dropped at the end."""
    import psycopg

    name = f"koboldchat_rel_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL unreachable at 127.0.0.1:5432: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgres://postgres@127.0.0.1:5432/{name}"
        try:
            yield url
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url():
    """One of Redis' databases 3..9 that is empty now, flushed again at the end."""
    import redis

    try:
        free = [
            n
            for n in range(3, 10)
            if redis.Redis(REDIS_HOST, REDIS_PORT, db=n, socket_timeout=3).dbsize() == 0
        ]
    except redis.RedisError as exc:
        pytest.skip(f"Redis unreachable at {REDIS_HOST}:{REDIS_PORT}: {exc}")
    if not free:
        pytest.skip("Redis databases 3..9 are all in use")
    db = random.choice(free)
    client = redis.Redis(REDIS_HOST, REDIS_PORT, db=db)
    client.flushdb()
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file; tests copy it rather than migrate again."""
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    migrate(_env(f"sqlite:///{path}", redis_url=None))
    return path


@pytest.fixture
def sqlite_url(sqlite_template, tmp_path) -> str:
    path = tmp_path / "db.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def slow_script(count: int = 30, delay: float = 0.05) -> Script:
    """A reply long enough to be caught mid-stream: `count` tokens `delay` apart."""
    return Script(tokens=[f"w{i} " for i in range(count)], delay=delay)


def _start_fake() -> FakeKobold:
    server = FakeKobold()
    server.default_script = slow_script()
    server.start()
    return server


@pytest.fixture
def fake():
    """A fake KoboldCpp whose replies last long enough to be caught mid-stream."""
    server = _start_fake()
    try:
        yield server
    finally:
        server.stop()


# --- servers -------------------------------------------------------------------------
def _env(database_url: str, *, redis_url: str | None, **extra) -> dict[str, str]:
    env = server_env(
        DATABASE_URL=database_url,
        KOBOLDCPP_API="native",
        INTENT_DETECTION="heuristic",
        CHAT_RATE_LIMIT_PER_MINUTE="0",
        KOBOLDCHAT_EMBEDDED_MODEL="off",
        **extra,
    )
    env.pop("REDIS_URL", None)  # CI's second leg exports one: each test picks its own
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def daphne_env(database_url: str, fake: FakeKobold, *, redis_url=None, **extra):
    """The environment of a Daphne process of the tests, talking to `fake`."""
    return _env(database_url, redis_url=redis_url, KOBOLDCPP_URL=fake.url, **extra)


@pytest.fixture
def daphnes(tmp_path):
    """Start Daphne processes with `start(env)`; all are stopped after the test."""
    started: list[DaphneProcess] = []

    def start(env: dict[str, str], *, port: int | None = None) -> DaphneProcess:
        log = tmp_path / f"daphne-{len(started)}.log"
        process = DaphneProcess(env, port=port, log_path=log)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@dataclass
class Cluster:
    """Two Daphne processes sharing PostgreSQL and Redis, one fake KoboldCpp."""

    a: DaphneProcess
    b: DaphneProcess
    fake: FakeKobold
    env: dict[str, str]
    database_url: str
    keys: list[str]  # API keys of users no test has used yet

    def users(self, count: int) -> list[str]:
        """API keys of `count` fresh users."""
        taken, self.keys[:count] = self.keys[:count], []
        assert len(taken) == count, "raise CLUSTER_USERS"
        return taken


def start_together(*processes: DaphneProcess) -> None:
    """Start processes in parallel (each takes seconds to boot Django)."""
    with ThreadPoolExecutor(len(processes)) as pool:
        for started in [pool.submit(p.start) for p in processes]:
            started.result()


def stop_together(*processes: DaphneProcess) -> None:
    with ThreadPoolExecutor(len(processes)) as pool:
        list(pool.map(DaphneProcess.stop, processes))


@pytest.fixture(scope="session")
def cluster(postgres_url, redis_url, tmp_path_factory):
    logs = tmp_path_factory.mktemp("cluster")
    fake = _start_fake()
    env = daphne_env(postgres_url, fake, redis_url=redis_url)
    a = DaphneProcess(env, log_path=logs / "a.log")
    b = DaphneProcess(env, log_path=logs / "b.log")
    try:
        with ThreadPoolExecutor(1) as pool:
            # Daphne boots without tables: migrate meanwhile, then make the users.
            keys = pool.submit(_migrate_and_make_users, env, CLUSTER_USERS)
            start_together(a, b)
            yield Cluster(a, b, fake, env, postgres_url, list(keys.result().values()))
    finally:
        stop_together(a, b)
        fake.stop()


def _migrate_and_make_users(env: dict[str, str], count: int) -> dict[str, str]:
    migrate(env)
    return make_users(env, unique_names(count))


def make_users(env: dict[str, str], names: list[str]) -> dict[str, str]:
    """Create users (no password) with one API key each; return name -> raw key."""
    script = MAKE_USERS.replace("NAMES", repr(names))
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def unique_names(count: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"rel{tag}_{i}" for i in range(count)]


def db_rows(database_url: str, query: str, params: tuple = ()) -> list[tuple]:
    """Read the servers' database directly (`%s` placeholders)."""
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            return conn.execute(query.replace("%s", "?"), params).fetchall()
    import psycopg

    with psycopg.connect(database_url.replace("postgres://", "postgresql://")) as conn:
        return conn.execute(query, params).fetchall()


def reply_row(database_url: str, message_id: int) -> dict:
    names = ("status", "content", "genkey", "error_code", "finish_reason")
    rows = db_rows(
        database_url,
        f"SELECT {', '.join(names)} FROM chat_message WHERE id = %s",
        (message_id,),
    )
    return dict(zip(names, rows[0], strict=True))


# --- sockets -------------------------------------------------------------------------
def connect(base_ws_url: str, key: str, path: str = "/ws/chat/"):
    """A `websockets` client logged in with an API key (no Origin: a script)."""
    return websockets.connect(
        base_ws_url + path,
        additional_headers={"Authorization": f"Bearer {key}"},
        open_timeout=10,
        max_size=2**22,
    )


async def receive(sock, timeout: float = 10.0) -> dict:
    return json.loads(await asyncio.wait_for(sock.recv(), timeout))


async def frames_until(sock, predicate, *, timeout: float = 15.0) -> list[dict]:
    """Frames until one satisfies `predicate`, that one last."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frames.append(json.loads(await sock.recv()))
            if predicate(frames[-1]):
                return frames


def is_end(frame: dict) -> bool:
    return frame["type"] == "end"


def tokens_seen(count: int):
    """A predicate true once `count` token frames went by."""
    seen = []

    def predicate(frame: dict) -> bool:
        if frame["type"] == "token":
            seen.append(frame)
        return len(seen) >= count

    return predicate


# --- a stack of a module's own ----------------------------------------------------------
@pytest.fixture(scope="module")
def stack():
    """(database URL, Redis URL): a migrated PostgreSQL database and a Redis db (10..12)
    of this module's own, removed afterwards."""
    import psycopg
    import redis

    name = f"koboldchat_handover_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
        free = [
            n
            for n in range(10, 13)  # 13: the benchmarks
            if redis.Redis(REDIS_HOST, REDIS_PORT, db=n, socket_timeout=3).dbsize() == 0
        ]
    except (psycopg.Error, redis.RedisError) as exc:
        pytest.skip(f"PostgreSQL or Redis unreachable: {exc}")
    if not free:
        pytest.skip("Redis databases 10..12 are all in use")
    db = random.choice(free)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        urls = (
            f"postgres://postgres@127.0.0.1:5432/{name}",
            f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}",
        )
        try:
            migrate(daphne_env(urls[0], _NoFake, redis_url=urls[1]))
            yield urls
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            redis.Redis(REDIS_HOST, REDIS_PORT, db=db).flushdb()


class _NoFake:
    url = "http://127.0.0.1:9"  # migrations talk to no backend
