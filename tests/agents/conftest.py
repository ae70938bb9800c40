"""Fixtures of the agents tests: fake KoboldCpp servers of any flavour."""

import pytest

from tests.fake_kobold import FakeKobold


@pytest.fixture
def make_fake():
    """Start a FakeKobold with the given options; every one is stopped afterwards."""
    servers: list[FakeKobold] = []

    def make(**options) -> FakeKobold:
        server = FakeKobold(**options)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
