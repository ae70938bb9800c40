"""Fixtures for the pool: two or three fake KoboldCpp servers as backend rows."""

import pytest

from chat.models import Backend
from tests.chat.conftest import (  # noqa: F401  (the chat fixtures, here too)
    _fresh_backend_queue,
    make_key,
    make_user,
)


@pytest.fixture
def make_pool(settings, make_fake):
    """`make_pool(n, **fake options)`: n fakes as rows "a", "b", ... (in that order of
    preference on a tie), also named by KOBOLDCPP_URL(S) so no other row is seeded."""

    def make(count: int = 2, **options):
        fakes = [make_fake(**options) for _ in range(count)]
        settings.KOBOLDCPP_URL = fakes[0].url
        settings.KOBOLDCPP_URLS = [fake.url for fake in fakes[1:]]
        settings.KOBOLDCPP_API = "native"
        settings.KOBOLDCPP_PASSWORD = ""
        settings.INTENT_DETECTION = "heuristic"
        settings.LLM_BUSY_RETRIES = 2
        for name, fake in zip("abc", fakes, strict=False):
            Backend.objects.create(name=name, url=fake.url, api="native")
        return fakes

    return make
