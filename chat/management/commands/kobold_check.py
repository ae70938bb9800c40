"""`manage.py kobold_check`: is each configured KoboldCpp usable, and if not, what to do.

Prints what each backend of KOBOLDCPP_URL(S) is, runs a short test generation on it, and
exits non-zero with the exact fix when any step of any backend fails.
"""

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from agents.backend_probe import BackendInfo
from agents.errors import (
    BackendAuthError,
    BackendBusy,
    BackendUnreachable,
    LLMError,
)
from agents.events import ChatTurn, Finished, TextDelta
from agents.http_client import close_llm_http_client
from agents.llm_service import GenerationSettings, LLMService
from agents.request_body import new_genkey
from chat.pool.registry import configured_urls

TEST_PROMPT = [ChatTurn("user", "Say hello in five words.")]
START_KOBOLDCPP = (
    "python3 koboldcpp.py --model SmolLM2-135M-Instruct.Q4_1.gguf --host 127.0.0.1 "
    "--port {port} --contextsize 2048 --usecpu --skiplauncher --chatcompletionsadapter "
    "ChatML"
)


class CheckFailed(Exception):
    """One step of the check failed; `fix` says exactly what to do about it."""

    def __init__(self, problem: str, fix: str):
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


@dataclass
class TestGeneration:
    text: str
    ttft_ms: float
    tokens: int
    tokens_per_s: float | None


def explain(exc: BaseException, *, url: str, waited: float) -> CheckFailed:
    """The problem and its fix for an error raised while talking to the backend."""
    port = urlsplit(url).port or 5001
    if isinstance(exc, BackendUnreachable):
        return CheckFailed(
            f"nothing answers at {url}",
            f"start KoboldCpp with: {START_KOBOLDCPP.format(port=port)}\n"
            f"or set KOBOLDCPP_URL to where it runs (now {url}), or use `make run`, "
            "which starts an embedded model when nothing answers",
        )
    if isinstance(exc, TimeoutError):
        return CheckFailed(
            f"{url} accepted the connection but sent no answer within {waited:g} s",
            "KoboldCpp may still be loading its model or be stuck: wait and retry, or "
            f"restart it ({START_KOBOLDCPP.format(port=port)}); check that KOBOLDCPP_URL "
            "points at KoboldCpp and not at another service",
        )
    if isinstance(exc, BackendAuthError):
        if settings.KOBOLDCPP_PASSWORD:
            return CheckFailed(
                "KoboldCpp refused KOBOLDCPP_PASSWORD (HTTP 401)",
                "set KOBOLDCPP_PASSWORD to exactly the --password KoboldCpp was started "
                "with, or restart KoboldCpp without --password",
            )
        return CheckFailed(
            "KoboldCpp is password-protected and no password is set (HTTP 401)",
            "set KOBOLDCPP_PASSWORD to the --password KoboldCpp was started with",
        )
    if isinstance(exc, BackendBusy):
        return CheckFailed(
            "KoboldCpp stayed busy with another generation (HTTP 503)",
            "wait for the other generation to finish, or start KoboldCpp with "
            "--multiuser so that requests queue instead of failing",
        )
    return CheckFailed(
        f"{url} answered, but not as KoboldCpp or an OpenAI-compatible server ({exc})",
        "check KOBOLDCPP_URL; set KOBOLDCPP_API=native for KoboldCpp, or "
        "KOBOLDCPP_API=openai for llama.cpp / llama-cpp-python",
    )


def auth_state(info: BackendInfo, *, accepted: bool | None) -> str:
    """One line on protection, whether a password is set, and whether it was accepted."""
    has_password = bool(settings.KOBOLDCPP_PASSWORD)
    if not info.protected:
        return "not protected" + (" (KOBOLDCPP_PASSWORD is set, unused)" * has_password)
    if not has_password:
        return "protected, KOBOLDCPP_PASSWORD not set"
    verdict = {True: "accepted", False: "refused", None: "not tried"}[accepted]
    return f"protected, KOBOLDCPP_PASSWORD set and {verdict}"


async def test_generation(service: LLMService) -> TestGeneration:
    """Stream a short reply and time its first token and its speed."""
    genkey = new_genkey()
    started = time.perf_counter()
    first = last = None
    parts: list[str] = []
    finished: Finished | None = None
    stream = service.stream_chat(
        TEST_PROMPT, settings=GenerationSettings(max_tokens=16), genkey=genkey
    )
    try:
        async for event in stream:
            if isinstance(event, TextDelta):
                last = time.perf_counter()
                first = first or last
                parts.append(event.text)
            elif isinstance(event, Finished):
                finished = event
    except asyncio.CancelledError:
        # KoboldCpp keeps generating for a client that left; free it for real users.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(service.abort(genkey), 2.0)
        raise
    tokens = (finished and finished.completion_tokens) or len(parts)
    speed = None
    if first is not None and last > first and tokens > 1:
        speed = round((tokens - 1) / (last - first), 1)
    ttft = ((first or time.perf_counter()) - started) * 1000
    return TestGeneration("".join(parts), round(ttft), tokens, speed)


class Command(BaseCommand):
    help = "Check the KoboldCpp backend: reachability, model, auth, a test generation."

    def add_arguments(self, parser):
        parser.add_argument(
            "--timeout", type=float, default=10.0, help="seconds for the info calls"
        )
        parser.add_argument(
            "--generation-timeout",
            type=float,
            default=60.0,
            help="seconds for the test generation",
        )

    def handle(self, *args, timeout: float, generation_timeout: float, **options):
        if options["verbosity"] < 2:
            # The report below says what failed; the service's tracebacks would bury it.
            logging.getLogger("agents").setLevel(logging.CRITICAL)
        try:
            asyncio.run(self._check_all(timeout, generation_timeout))
        except CheckFailed as failure:
            self.stdout.write(f"FAILED: {failure.problem}")
            self.stdout.write(f"Fix:    {failure.fix}")
            raise CommandError(f"kobold_check failed: {failure.problem}") from None
        self.stdout.write(self.style.SUCCESS("OK: the backend is ready for koboldchat"))

    async def _check_all(self, timeout: float, generation_timeout: float) -> None:
        """Each backend in turn; with several, every one is checked before failing."""
        urls, failures = configured_urls(), []
        try:
            for url in urls:
                service = LLMService.for_backend(
                    base_url=url,
                    api=settings.KOBOLDCPP_API,
                    password=settings.KOBOLDCPP_PASSWORD,
                )
                try:
                    await self._check(service, timeout, generation_timeout)
                except CheckFailed as failure:
                    if len(urls) == 1:
                        raise
                    self.stdout.write(f"  FAILED: {failure.problem}")
                    self.stdout.write(f"  Fix:    {failure.fix}")
                    failures.append(failure)
        finally:
            await close_llm_http_client()
        if failures:
            raise CheckFailed(
                f"{len(failures)} of {len(urls)} backends failed: {failures[0].problem}",
                failures[0].fix,
            )

    def _row(self, label: str, value: object) -> None:
        self.stdout.write(f"  {label:<11} {value}")

    async def _check(self, service, timeout: float, generation_timeout: float) -> None:
        url = service.base_url
        label = settings.KOBOLDCHAT_BACKEND_LABEL or "KoboldCpp"
        self.stdout.write(f"Checking {label} at {url}")
        info = await self._step(service.backend_info(), url, timeout)
        self._row("reachable", f"yes ({info.latency_ms:g} ms)")
        self._row("API", info.api)
        self._row("model", info.model)
        self._row("version", info.version or "(not reported)")
        self._row("context", f"{info.max_context} tokens")
        choice = await service.resolve_template()
        if choice.source == "openai":
            self._row("format", choice.reason)
        else:
            self._row("format", f"{choice.template.name} ({choice.reason})")
        try:
            result = await self._step(test_generation(service), url, generation_timeout)
        except CheckFailed as failure:
            refused = isinstance(failure.__cause__, BackendAuthError)
            self._row("auth", auth_state(info, accepted=False if refused else None))
            raise
        self._row("auth", auth_state(info, accepted=True))
        self._row("generation", f"{result.text.strip()!r}")
        speed = f"{result.tokens_per_s} tokens/s" if result.tokens_per_s else "n/a"
        self._row(
            "speed",
            f"first token {result.ttft_ms:g} ms, {result.tokens} tokens, {speed}",
        )

    async def _step(self, coroutine, url: str, timeout: float):
        """Await one step within `timeout`, turning any backend error into a CheckFailed."""
        try:
            return await asyncio.wait_for(coroutine, timeout)
        except (LLMError, TimeoutError) as exc:
            raise explain(exc, url=url, waited=timeout) from exc
