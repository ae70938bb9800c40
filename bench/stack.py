"""One stack under test: the stamping upstream in its own process, a fresh database
(SQLite file or PostgreSQL), a channel layer (memory or a flushed Redis db) and Daphne."""

import json
import os
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

from tests.live_daphne import ROOT, DaphneProcess, migrate, server_env

RESULTS = ROOT / "bench" / "results"
# Server logs, SQL write logs and the SQLite database: scratch, outside the tree.
LOGS = Path(tempfile.gettempdir()) / "koboldchat-bench"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "koboldchat_bench"
REDIS_URL = "redis://127.0.0.1:6379/13"  # a spare db, flushed before each run


def raise_file_limit(wanted: int = 8192) -> None:
    """Hundreds of sockets each way: lift the soft limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


class Upstream:
    """`python -m bench.upstream` with enough slots for every socket at once."""

    def __init__(self, slots: int):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.upstream", "--slots", str(slots)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline().split()
        if not line or line[0] != "READY":
            self.stop()
            raise RuntimeError("the upstream did not start")
        self.url = f"http://127.0.0.1:{line[1]}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@dataclass
class Stack:
    """A database and channel layer configuration, seeded, ready for Daphne processes."""

    name: str
    database_url: str
    redis_url: str = ""
    seeded: dict = field(default_factory=dict)
    extra_env: dict = field(default_factory=dict)  # --daphne-env, for experiments

    def env(self, upstream: Upstream, **extra: str) -> dict[str, str]:
        values = {
            "DATABASE_URL": self.database_url,
            "KOBOLDCPP_URL": upstream.url,
            "KOBOLDCPP_API": "native",
            "INTENT_DETECTION": "heuristic",
            "BACKEND_CONCURRENCY": "500",
            "CHAT_RATE_LIMIT_PER_MINUTE": "0",
            "LOG_LEVEL": "WARNING",
            "DJANGO_DEBUG": "1",
            **self.extra_env,
            **extra,
        }
        env = server_env(**values)
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        else:
            env.pop("REDIS_URL", None)
        return env

    def daphne(self, upstream: Upstream, *, sql_log: Path | None = None, **extra: str):
        """A started Daphne; with `sql_log`, one that logs its write statements there."""
        env = self.env(upstream, **extra)
        if sql_log is not None:
            env["BENCH_SQL_LOG"] = str(sql_log)
            env["PYTHONPATH"] = str(ROOT / "bench" / "sql_trace")
        LOGS.mkdir(exist_ok=True)
        log_path = LOGS / f"daphne-{self.name}.log"
        return DaphneProcess(env, log_path=log_path).start()


def memory_stack() -> Stack:
    LOGS.mkdir(exist_ok=True)
    path = LOGS / "bench.sqlite3"  # outside the tree: nothing of it to commit
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return Stack("memory+sqlite", f"sqlite:///{path}")


def redis_stack() -> Stack:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DATABASE}")
    redis.Redis.from_url(REDIS_URL).flushdb()
    return Stack(
        "redis+postgres",
        f"postgres://postgres@127.0.0.1:5432/{PG_DATABASE}",
        redis_url=REDIS_URL,
    )


def prepare(
    stack: Stack, *, users: int, conversations: int, solo: int, history: int
) -> Stack:
    """Migrate and seed the stack's database; the seed is kept on the stack."""
    env = server_env(DATABASE_URL=stack.database_url)
    migrate(env)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.seed",
            "--users",
            str(users),
            "--conversations",
            str(conversations),
            "--solo",
            str(solo),
            "--history",
            str(history),
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    stack.seeded = json.loads(done.stdout.strip().splitlines()[-1])
    return stack


os.environ.setdefault("PYTHONUNBUFFERED", "1")
