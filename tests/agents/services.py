"""Helpers of the LLMService tests: a service on a fake KoboldCpp, a collected stream."""

import socket

from agents.events import ChatTurn
from agents.llm_service import GenerationSettings, LLMService

MESSAGES = [ChatTurn("system", "Be brief."), ChatTurn("user", "Hi")]
SETTINGS = GenerationSettings(max_tokens=50, stop=["\nUser:"])


def service(fake, **options) -> LLMService:
    """A service on `fake`: native API and two busy retries unless `options` say."""
    options.setdefault("api", "native")
    options.setdefault("busy_retries", 2)
    return LLMService(base_url=fake.url, **options)


async def collect(svc: LLMService, genkey: str = "K1") -> list:
    """Every event of one streamed reply to MESSAGES."""
    return [
        e async for e in svc.stream_chat(MESSAGES, settings=SETTINGS, genkey=genkey)
    ]


def closed_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
