"""Where one reply is written: a slot on a backend of the pool, taken in the backend
queue, and each backend tried. A reply that finds its backend unreachable or busy
before its first token moves to another one; the user sees no error."""

import logging

from channels.db import database_sync_to_async

from agents.errors import BackendBusy, BackendUnreachable, LLMError
from agents.llm_service import LLMService
from chat.models import Backend
from chat.pool import health, registry
from chat.pool.choice import Offer

log = logging.getLogger(__name__)

FAILS_OVER = (BackendUnreachable, BackendBusy)


def _read(conversation_id: int, rows, preferred):
    """What is not kept in memory, from the database (its thread)."""
    if rows is None:
        rows = registry.rows_read()
    if preferred is registry.UNKNOWN:
        preferred = registry.last_backend_of(conversation_id)
        registry.last_backend_note(conversation_id, preferred)
    return rows, preferred


async def _pool(conversation_id: int, model: str) -> tuple[list[Backend], int | None]:
    """The rows a reply may be written on, and the conversation's last backend: from
    memory for most replies, else in one hop to the database thread."""
    rows = registry.rows_kept()
    preferred = registry.last_backend_kept(conversation_id)
    if rows is None or preferred is registry.UNKNOWN:
        rows, preferred = await database_sync_to_async(_read)(
            conversation_id, rows, preferred
        )
    if model:
        rows = [row for row in rows if row.model == model]
    return rows, preferred


class Placement:
    def __init__(self, job_id: str, conversation_id: int, model: str = ""):
        self.job_id, self.conversation_id, self.model = job_id, conversation_id, model
        self.queue = None  # the backend queue, from the first acquire
        self.backend: Backend | None = None
        self.service: LLMService | None = None
        self.failures: list[str] = []  # "name: code", in order
        self._rows: list[Backend] | None = None
        self._preferred: int | None = None
        self._tried: set[int] = set()

    def _untried(self) -> list[Backend]:
        return [row for row in self._rows or () if row.pk not in self._tried]

    async def _offers(self) -> list[Offer]:
        rows = self._untried()
        down = await health.down_flags([registry.service_for(row) for row in rows])
        return [
            Offer(row.key, row.slots, preferred=row.pk == self._preferred, down=flag)
            for row, flag in zip(rows, down, strict=True)
        ]

    async def acquire(self, queue, on_position) -> LLMService:
        """Wait in `queue` for a slot on a backend not tried yet; its LLM service."""
        self.queue = queue
        if self._rows is None:
            self._rows, self._preferred = await _pool(self.conversation_id, self.model)
        if not self._untried():
            raise BackendUnreachable(
                f"No enabled backend serves {self.model}." if self.model
                else "No KoboldCpp backend is enabled."
            )  # fmt: skip
        key = await self.queue.wait_turn(self.job_id, on_position, self._offers)
        self.backend = next(row for row in self._rows if row.key == key)
        log.info(
            "job %s on backend %s (%s)%s",
            self.job_id, self.backend.name, self.backend.url,
            " again" if self.backend.pk == self._preferred else "",
        )  # fmt: skip
        self.service = registry.service_for(self.backend)
        return self.service

    async def moves_on(self, error: LLMError, *, started: bool) -> bool:
        """Record that the attempt failed, give its slot back; whether the reply is to
        be tried on another backend (nothing reached the user, and one is left)."""
        backend = self.backend
        self.failures.append(f"{backend.name}: {error.code}")
        self._tried.add(backend.pk)
        if isinstance(error, BackendUnreachable):
            await health.mark_down(backend.url, str(error))
        await self.queue.give_back(self.job_id)
        moves = isinstance(error, FAILS_OVER) and not started and bool(self._untried())
        log.warning(
            "job %s: backend %s failed with %s (upstream status %s)%s",
            self.job_id, backend.name, error.code, error.status,
            "; trying another backend" if moves else "",
        )  # fmt: skip
        return moves

    async def succeeded(self) -> None:
        registry.last_backend_note(self.conversation_id, self.backend.pk)
        await health.mark_up(self.backend.url)

    def fields(self) -> dict:
        """What the reply row keeps of it: the backend that wrote it, the attempts."""
        if self.backend is None:
            return {}
        last = [] if self.backend.pk in self._tried else [self.backend.name]
        tried = self.failures + last if self.failures else []
        model = self.service.model or self.backend.model
        return {
            "backend_id": self.backend.pk,
            "model": model[:200],
            "backend_attempts": " → ".join(tried),
        }
