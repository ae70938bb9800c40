"""The backend rows as the rest of the app uses them: seeded from the settings, read
for each reply, turned into the LLM service of each, checked for the admin."""

import asyncio
import logging
import time
from collections import OrderedDict
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.errors import LLMError
from agents.llm_service import LLMService
from chat.models import Backend, Message

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 3.0


def configured_urls() -> list[str]:
    """KOBOLDCPP_URL, then each of KOBOLDCPP_URLS, once each."""
    urls = [settings.KOBOLDCPP_URL, *settings.KOBOLDCPP_URLS]
    return list(dict.fromkeys(u.strip().rstrip("/") for u in urls if u.strip()))


def _seed_name(url: str, taken: set[str]) -> str:
    parts = urlsplit(url)
    name = (parts.hostname or url) + (f":{parts.port}" if parts.port else "")
    base, n = name[:60], 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def in_use(row: Backend) -> bool:
    """Whether this process writes on `row`: enabled, and added in the admin or seeded
    from a URL its settings still name."""
    return row.enabled and (not row.seeded or row.url in configured_urls())


def backends_seed() -> list[Backend]:
    """The rows in use, after giving each configured URL without a row one (so with
    nothing configured there is one backend, KOBOLDCPP_URL). A seeded row whose URL
    left the settings stays, unused, until they name it again (or the admin deletes
    it): a process started with other settings never changes what the others use."""
    rows = _all_rows()
    known = {row.url for row in rows}
    for url in configured_urls():
        if url not in known:
            rows.append(_seeded(url, {r.name for r in rows}))
    return [row for row in rows if in_use(row)]


def _all_rows() -> list[Backend]:
    return list(Backend.objects.all())


def _seeded(url: str, names: set[str]) -> Backend:
    """The new row of a configured URL; or the one another process has just made (the
    processes of a site start together, and their first replies seed at once)."""
    try:
        with transaction.atomic():
            row = Backend.objects.create(
                name=_seed_name(url, names),
                url=url,
                api=settings.KOBOLDCPP_API,
                slots=max(1, settings.BACKEND_CONCURRENCY),
                seeded=True,
            )
    except IntegrityError:
        made = Backend.objects.filter(url=url).first()
        if made is None:  # a name taken by another URL: the next free one
            return _seeded(
                url, names | set(Backend.objects.values_list("name", flat=True))
            )
        return made
    log.info("backend %s added from the settings (%s)", row.name, row.url)
    return row


def models_served() -> list[str]:
    """The models the backends in use reported when last asked."""
    served = Backend.objects.enabled().exclude(model="")
    return sorted({row.model for row in served if in_use(row)})


def models_changed(rows: list[Backend], models: list) -> dict[int, str]:
    """{pk: model} of the saved rows whose reported model (None: no answer) differs
    from the one they hold."""
    return {
        row.pk: model[:200]
        for row, model in zip(rows, models, strict=True)
        if row.pk and isinstance(model, str) and model[:200] != row.model
    }


def models_note(changed: dict[int, str]) -> None:
    """Keep the model each backend (by pk) reports now (see models_changed)."""
    for pk, model in changed.items():
        Backend.objects.filter(pk=pk).update(model=model)


# What each reply's placement reads, kept in memory: the rows in use for ROWS_SECONDS
# (an admin change applies within that), and the backend each conversation's last
# reply was written on (this process wrote it, or read it once).
ROWS_SECONDS = 2.0
LAST_KEPT = 10_000
_rows: tuple[float, tuple, list[Backend]] | None = None
_last: OrderedDict[int, int | None] = OrderedDict()
UNKNOWN = object()


def _settings_key() -> tuple:
    return (settings.KOBOLDCPP_URL, tuple(settings.KOBOLDCPP_URLS))


def rows_kept() -> list[Backend] | None:
    """The rows in use read less than ROWS_SECONDS ago, or None."""
    if (
        _rows
        and _rows[1] == _settings_key()
        and time.monotonic() - _rows[0] < ROWS_SECONDS
    ):
        return _rows[2]
    return None


def rows_read() -> list[Backend]:
    """backends_seed(), kept for the next ROWS_SECONDS (database thread)."""
    global _rows
    rows = backends_seed()
    _rows = (time.monotonic(), _settings_key(), rows)
    return rows


def last_backend_kept(conversation_id: int):
    """The backend of the conversation's last reply, or UNKNOWN."""
    return _last.get(conversation_id, UNKNOWN)


def last_backend_note(conversation_id: int, backend_id: int | None) -> None:
    _last[conversation_id] = backend_id
    _last.move_to_end(conversation_id)
    while len(_last) > LAST_KEPT:
        _last.popitem(last=False)


def forget_kept() -> None:
    """Forget the rows and conversations kept (tests change both under a process)."""
    global _rows
    _rows = None
    _last.clear()


def last_backend_of(conversation_id: int) -> int | None:
    """The backend that wrote the conversation's latest reply (its cache is warm)."""
    replies = Message.objects.filter(
        conversation_id=conversation_id, backend__isnull=False
    )
    return replies.order_by("-id").values_list("backend_id", flat=True).first()


def backend_get(backend_id: int | None) -> Backend | None:
    return Backend.objects.filter(pk=backend_id).first() if backend_id else None


def service_for(backend: Backend) -> LLMService:
    """The shared LLM service of `backend` (an empty password: KOBOLDCPP_PASSWORD)."""
    return LLMService.for_backend(
        base_url=backend.url,
        api=backend.api,
        password=backend.password or settings.KOBOLDCPP_PASSWORD,
    )


async def backend_check(backend: Backend) -> Backend:
    """Ask `backend` what it serves now; store whether it answered and its model."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            info = await service_for(backend).backend_info()
    except (LLMError, TimeoutError) as exc:
        backend.reachable = False
        log.warning(
            "backend %s (%s) did not answer: %s", backend.name, backend.url, exc
        )
    else:
        backend.reachable, backend.model = True, info.model[:200]
    backend.checked_at = timezone.now()
    return backend


def backends_check(backends: list[Backend]) -> None:
    """Check every backend at once and store what each said (the admin's list; from
    synchronous code, whose connection and transaction the rows are saved on)."""

    async def check_all():
        return await asyncio.gather(*(backend_check(b) for b in backends))

    checked = async_to_sync(check_all)()
    Backend.objects.bulk_update(checked, ["reachable", "model", "checked_at"])
