"""A backend found down: skipped, probed at most once a second, back when it answers;
in Redis, what one process found is what every process knows, and only one of them
probes."""

import asyncio

import pytest

from agents.llm_service import LLMService
from chat.pool import health
from tests.chat.test_backend_queue import REDIS_URL, _redis_up


@pytest.fixture
def redis_boards(settings):
    """Two boards on one Redis, as two processes would have."""
    if not _redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    settings.REDIS_URL = REDIS_URL
    health.forget_health()
    return health._RedisBoard(REDIS_URL), health._RedisBoard(REDIS_URL)


async def test_one_process_finds_it_down_and_the_other_knows(redis_boards):
    first, second = redis_boards
    url = "http://gpu9:5001"
    assert await first.mark(url) is True  # newly down: logged once
    assert await second.mark(url) is False
    assert await second.is_marked(url)
    assert await second.claim_probe(url) is False  # just found down: not yet
    await asyncio.sleep(health.PROBE_INTERVAL_SECONDS + 0.05)
    claims = await asyncio.gather(first.claim_probe(url), second.claim_probe(url))
    assert sorted(claims) == [False, True]  # one probe among all
    assert await first.clear(url) is True
    await asyncio.sleep(health.READ_AGAIN_SECONDS + 0.05)
    assert not await second.is_marked(url)


async def test_a_down_backend_comes_back_when_it_answers(settings, make_fake):
    fake = make_fake()
    service = LLMService.for_backend(base_url=fake.url, api="native", password="")
    await health.mark_down(fake.url, "test")
    assert await health.is_down(service)  # within the interval: not probed again
    assert fake.requests == []
    await asyncio.sleep(health.PROBE_INTERVAL_SECONDS + 0.05)
    assert not await health.is_down(service)  # one probe: it answers
    assert [r.path for r in fake.requests] == ["/api/extra/version"]
    assert not await health.known_down(fake.url)
