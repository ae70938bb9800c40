"""Fuzzing the chat socket with hypothesis: whatever frame a client sends, the consumer
neither crashes nor closes, and a `ping` right after still gets its `pong`."""

import asyncio
import json
import threading

import pytest
from channels.layers import get_channel_layer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.http_client import close_llm_http_client
from chat.models import ApiKey
from chat.replies.job import local_jobs
from chat.replies.queue import reset_backend_queue
from tests.chat.conftest import open_socket

TYPES = ["message", "stop", "regenerate", "continue", "resume", "ping", "", "end"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
objects = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(TYPES) | values,
        "text": values,
        "conversation_id": values,
        "message_id": values,
    },
).flatmap(
    lambda base: st.dictionaries(st.text(max_size=12), values, max_size=3).map(
        lambda extra: {**extra, **base}
    )
)
frames = st.one_of(
    st.text(max_size=200),
    objects.map(json.dumps),
    values.map(json.dumps),
    st.binary(max_size=64).map(lambda b: b.decode("latin1")),
)


class SocketLoop:
    """One socket on an event loop of its own thread, so that every hypothesis example
    (a plain function) talks to the same, long-lived connection."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 15.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """End every task of the loop (jobs, reaper, layer receivers) before stopping
        it: a receive left pending would pin the shared channel layer to this loop."""
        self.run(_wind_down())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


async def _wind_down() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await close_llm_http_client()
    layer = get_channel_layer()
    if hasattr(layer, "close_pools"):  # channels-redis: its pools belong to this loop
        await layer.close_pools()


async def jobs_finished(earlier: list, timeout: float = 10.0) -> None:
    """The jobs this socket started have ended (a job an earlier test left behind, on a
    loop of its own that is gone, never will)."""
    async with asyncio.timeout(timeout):
        for job in local_jobs():
            if job not in earlier:
                await job.done.wait()


@pytest.fixture
def fuzz_socket(kobold_settings, django_user_model):
    kobold_settings.CHAT_RATE_LIMIT_PER_MINUTE = 0
    reset_backend_queue()
    user = django_user_model.objects.create_user("fuzzed")
    raw = ApiKey.generate(user=user)[1]
    earlier = local_jobs()
    runner = SocketLoop()
    comm = runner.run(open_socket(raw))
    assert comm.connected
    yield runner, comm
    runner.run(comm.disconnect())
    runner.run(jobs_finished(earlier))  # the last reply job writes its end
    runner.close()
    reset_backend_queue()


async def ping_pong(comm, frame: str) -> None:
    # send_input, not send_to: the communicator refuses an empty frame, a browser not.
    await comm.send_input({"type": "websocket.receive", "text": frame})
    await comm.send_json_to({"type": "ping"})
    while True:  # replies and error frames may come first
        answer = await comm.receive_json_from(timeout=5)
        if answer.get("type") == "pong":
            return


@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings(  # channels-redis names channels with `random`
    "ignore::hypothesis.errors.HypothesisDeprecationWarning"
)
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(frame=frames)
def test_random_frames_never_crash_or_close_the_socket(fuzz_socket, frame):
    """Text, JSON of any shape and random field types: the socket still answers ping."""
    runner, comm = fuzz_socket
    runner.run(ping_pong(comm, frame))
