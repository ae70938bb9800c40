"""KoboldCpp calls: streamed and plain chat replies, abort, token counts, backend info.
Speaks the native API (`/api`, prompt from a chat template) or the OpenAI one (`/v1`)."""

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator

from agents import backend_probe
from agents.backend_probe import BackendInfo
from agents.backend_transport import Backend
from agents.chat_templates import CHATML, ChatTemplate
from agents.conf import conf
from agents.errors import BackendProtocolError, GenerationFailed, LLMError
from agents.events import BusyRetry, ChatTurn, StreamEvent
from agents.request_body import (
    Completion,
    GenerationSettings,
    generation_request,
    parse_completion,
)
from agents.template_choice import (
    TemplateChoice,
    choose_template,
    openai_choice,
    version_tuple,
)

__all__ = ["Completion", "GenerationSettings", "LLMService"]

logger = logging.getLogger("agents.llm_service")

TOKEN_CACHE_SIZE = 2048
_services: dict[tuple, "LLMService"] = {}


class LLMService:
    """One KoboldCpp (or OpenAI-compatible) backend, reached via the shared client.
    Options left None take their setting (agents.conf). What the backend is (API,
    version, model, chat template, context size) is learnt once and kept here.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api: str | None = None,
        password: str = "",
        template: str | None = None,
        busy_retries: int | None = None,
    ) -> None:
        api = conf.KOBOLDCPP_API if api is None else api
        if api not in ("auto", "native", "openai"):
            raise ValueError(
                f"KOBOLDCPP_API must be auto, native or openai, not {api!r}"
            )
        retries = conf.LLM_BUSY_RETRIES if busy_retries is None else busy_retries
        self.backend = Backend(base_url.rstrip("/"), password, retries)
        self.api = api
        self.template_setting = (
            conf.KOBOLDCPP_CHAT_TEMPLATE if template is None else template
        )
        # An override is checked now, so a misspelt name fails at start.
        self._choice: TemplateChoice | None = None
        self._chosen_for: tuple[str, str] | None = None
        if self.template_setting.strip().lower() != "auto":
            self._choice = choose_template(self.template_setting)
        # None until known: api="openai" may still be a KoboldCpp with a tokencount.
        self.is_koboldcpp: bool | None = True if api == "native" else None
        self.version: str | None = None
        self.model = ""  # the served model's name, once read (native API)
        self.max_context: int | None = None
        self._resolved: str | None = None if api == "auto" else api
        self._token_counts: OrderedDict[str, int] = OrderedDict()

    @classmethod
    def from_settings(cls) -> "LLMService":
        """The service for the KOBOLDCPP_* and LLM_* settings of this moment."""
        return cls.for_backend(
            base_url=conf.KOBOLDCPP_URL,
            api=conf.KOBOLDCPP_API,
            password=conf.KOBOLDCPP_PASSWORD,
        )

    @classmethod
    def for_backend(cls, *, base_url: str, api: str, password: str) -> "LLMService":
        """The shared service of one backend (of a pool), with the chat template and
        busy retries of the settings: one instance per configuration, so the API probe,
        the chat template, the context size and the token counts are learnt once per
        process, not per reply."""
        template, retries = conf.KOBOLDCPP_CHAT_TEMPLATE, conf.LLM_BUSY_RETRIES
        key = (base_url.rstrip("/"), api, password, template, retries)
        if key not in _services:
            _services[key] = cls(
                base_url=key[0], api=api, password=password,
                template=template, busy_retries=retries,
            )  # fmt: skip
        return _services[key]

    @staticmethod
    def forget_all() -> None:
        """Drop the per-configuration instances (tests point at a new server each time)."""
        _services.clear()

    @property
    def base_url(self) -> str:
        return self.backend.base_url

    @property
    def template(self) -> ChatTemplate:
        """The native prompt's template; ChatML until `resolve_template` has chosen."""
        return self._choice.template if self._choice else CHATML

    async def resolve_api(self) -> str:
        """The API in use, "native" or "openai"; "auto" probes once, on first call."""
        if self._resolved is None:
            self.version = await backend_probe.probe_koboldcpp(self.backend)
            self.is_koboldcpp = self.version is not None
            self._resolved = "native" if self.is_koboldcpp else "openai"
            logger.info("%s speaks the %s API", self.base_url, self._resolved)
        return self._resolved

    async def resolve_template(self) -> TemplateChoice:
        """The chat template and why; "auto" asks the backend once, on first call."""
        if self._choice is None:
            if await self.resolve_api() == "openai":
                self._choice = openai_choice()
            else:
                if self.version is None:
                    self.version = await backend_probe.probe_koboldcpp(self.backend)
                try:
                    model = await backend_probe.model_name(self.backend)
                except BackendProtocolError:
                    logger.warning("%s names no model", self.base_url, exc_info=True)
                    model = ""
                self._learn_template(model, self.version or "")
        return self._choice  # type: ignore[return-value]

    async def stream_chat(
        self,
        messages: list[ChatTurn],
        *,
        settings: GenerationSettings,
        genkey: str,
    ) -> AsyncIterator[StreamEvent | BusyRetry]:
        """Text deltas of the reply, then one Finished (BusyRetry before each retry of
        a busy backend; agents.runtime.watch_stream consumes them).

        A reasoning model's thinking comes apart, as ReasoningDelta (before the
        answer's TextDeltas; AnswerRetracted first when the reply began inside the
        thinking), and `Finished.reasoning_unclosed` says it never ended.

        Raises BackendProtocolError when the stream ends before a finish, and
        GenerationFailed when the backend reports a failed generation: the deltas
        already yielded are the partial reply.
        """
        api = await self.resolve_api()
        await self.resolve_template()
        path, body = self._request(api, messages, settings, genkey, stream=True)
        async for event in self.backend.stream_events(
            path, body, api=api, genkey=genkey
        ):
            yield event

    async def generate(
        self,
        messages: list[ChatTurn],
        *,
        settings: GenerationSettings,
        genkey: str,
    ) -> Completion:
        """The whole reply in one (non-streamed) request, with the backend's token
        counts when it reports real ones.

        KoboldCpp runs a non-streamed generation to its end even when the client leaves,
        so a cancelled call aborts it upstream. Raises GenerationFailed (with `text`)
        when the backend reports a failed generation.
        """
        api = await self.resolve_api()
        await self.resolve_template()
        path, body = self._request(api, messages, settings, genkey, stream=False)
        try:
            data = await self.backend.request_json(
                "POST", path, json=body, genkey=genkey
            )
        except asyncio.CancelledError:
            await asyncio.shield(self.abort(genkey))
            raise
        # KoboldCpp before 1.82 sends placeholder usage (100/100) from /v1.
        await self._learn_kind()
        old = self.is_koboldcpp and version_tuple(self.version or "") < (1, 82)
        try:
            completion = parse_completion(api, data, usage=not old)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise BackendProtocolError(f"unexpected reply from {path}") from exc
        if completion.finish_reason == "error":
            raise GenerationFailed(
                'KoboldCpp ended the reply with finish_reason "error"',
                text=completion.text,
            )
        return completion

    async def abort(self, genkey: str) -> bool:
        """Ask KoboldCpp to stop the generation `genkey`; True if it says it did."""
        try:
            data = await self.backend.request_json(
                "POST",
                "/api/extra/abort",
                json={"genkey": genkey},
                genkey=genkey,
                retry_busy=False,
            )
        except LLMError:
            logger.warning("abort of %s failed", genkey, exc_info=True)
            return False
        success = data.get("success") if isinstance(data, dict) else None
        return success in ("true", True)

    async def count_tokens(self, text: str) -> int:
        """Tokens in `text` per the backend's tokenizer (estimated on non-KoboldCpp)."""
        if text in self._token_counts:
            self._token_counts.move_to_end(text)
            return self._token_counts[text]
        await self.resolve_api()
        count = None
        if self.is_koboldcpp is not False:
            count = await self._tokencount_or_none(text)
        if count is None:
            count = len(text) // 4 + 1  # about four characters a token in English
        self._token_counts[text] = count
        if len(self._token_counts) > TOKEN_CACHE_SIZE:
            self._token_counts.popitem(last=False)
        return count

    async def backend_info(self) -> BackendInfo:
        """Model, version, auth, context size and load of the backend, measured now.

        On the native API it also makes (or, for a new model, remakes) the "auto"
        choice of the chat template, from the model and version it reads anyway.
        """
        api = await self.resolve_api()
        await self._learn_kind()
        info = await backend_probe.backend_info(
            self.backend, api, koboldcpp=self.is_koboldcpp
        )
        if self.is_koboldcpp:
            self.max_context = info.max_context
            self.version = info.version
        if api == "native" and self._chosen_for != (info.model, info.version):
            self._learn_template(info.model, info.version)
        return info

    async def _learn_kind(self) -> None:
        """Whether the backend is KoboldCpp, and which, when api="openai" left it open."""
        if self.is_koboldcpp is None:
            self.version = await backend_probe.probe_koboldcpp(self.backend)
            self.is_koboldcpp = self.version is not None

    def _learn_template(self, model: str, version: str) -> None:
        self.model = model
        if self._choice and self._choice.source == "override":
            return  # an override never changes
        choice = choose_template(self.template_setting, model=model, version=version)
        if self._choice is None or choice.template != self._choice.template:
            logger.info(
                "%s: chat template %s (%s)",
                self.base_url,
                choice.template.name,
                choice.reason,
            )
        self._choice, self._chosen_for = choice, (model, version)

    async def _tokencount_or_none(self, text: str) -> int | None:
        try:
            return await backend_probe.tokencount(self.backend, text)
        except BackendProtocolError as exc:
            if self.is_koboldcpp or exc.status != 404:
                raise
            logger.info("%s has no tokencount endpoint; estimating", self.base_url)
            self.is_koboldcpp = False
            return None

    def _request(
        self,
        api: str,
        messages: list[ChatTurn],
        settings: GenerationSettings,
        genkey: str,
        *,
        stream: bool,
    ) -> tuple[str, dict]:
        return generation_request(
            api,
            self.template,
            messages,
            settings,
            genkey=genkey,
            stream=stream,
            max_context=self.max_context,
        )
