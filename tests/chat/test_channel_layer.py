"""The channel layers we configure lose nothing when a receive is cancelled.

channels-redis' core layer loses a message meant for *another* channel of the process
when the receive that holds the process's Redis read is cancelled as the message arrives
(a socket closing, a reply job ending): sockets then waited forever for `end`. Each case
below cancels one receive a few loop turns after a message for a second channel was sent.
"""

import asyncio

import pytest
import redis
from django.utils.module_loading import import_string

from chat.replies.listener import GroupListener
from koboldchat.channel_layer import channel_layers_config

REDIS_URL = "redis://127.0.0.1:6379/14"


def _redis_up() -> bool:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False


def _layer(redis_url: str):
    config = channel_layers_config(redis_url)["default"]
    return import_string(config["BACKEND"])(**config["CONFIG"])


@pytest.fixture(params=["memory", "redis"])
def layer(request):
    if request.param == "redis" and not _redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    return _layer(REDIS_URL if request.param == "redis" else "")


async def test_a_cancelled_receive_loses_no_message_of_another_channel(layer):
    lost = []
    for attempt in range(60):
        cancelled, waiting = await layer.new_channel(), await layer.new_channel()
        doomed = asyncio.create_task(layer.receive(cancelled))
        await asyncio.sleep(0.005)
        receiver = asyncio.create_task(layer.receive(waiting))
        await asyncio.sleep(0.005)
        sending = asyncio.create_task(layer.send(waiting, {"type": "t", "n": attempt}))
        for _ in range(attempt % 10):  # the window moves across the read of the reply
            await asyncio.sleep(0)
        doomed.cancel()
        await sending
        try:
            await asyncio.wait_for(receiver, 2)
        except TimeoutError:
            lost.append(attempt)
    assert lost == []


async def test_group_listener_keeps_frames_across_timed_out_waits(layer):
    """Waiting on a listener with a timeout drops nothing sent after the timeout."""
    from channels.layers import channel_layers

    channel_layers.backends["default"] = layer
    async with GroupListener("user.listener-test") as listener:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await listener.get()
        for n in range(3):
            await layer.group_send("user.listener-test", {"type": "t", "n": n})
        got = [await asyncio.wait_for(listener.get(), 2) for _ in range(3)]
    assert [m["n"] for m in got] == [0, 1, 2]


async def test_frames_sent_at_once_arrive_all_and_in_order(layer):
    """Many group_sends in one loop turn (the Redis layer pipelines them) all arrive,
    in the order they were sent."""
    channel = await layer.new_channel()
    await layer.group_add("user.burst-test", channel)
    await asyncio.gather(
        *(
            layer.group_send("user.burst-test", {"type": "t", "n": n})
            for n in range(200)
        )
    )
    got = [(await asyncio.wait_for(layer.receive(channel), 2))["n"] for _ in range(200)]
    await layer.group_discard("user.burst-test", channel)
    assert got == list(range(200))


async def test_two_sites_on_one_redis_server_do_not_hear_each_other():
    """Redis's pub/sub ignores database numbers: a site on db 14 and one on db 15 send
    to groups of the same name, and each hears its own frames only."""
    if not _redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    mine, theirs = _layer(REDIS_URL), _layer(REDIS_URL.replace("/14", "/15"))
    mine_channel, their_channel = await mine.new_channel(), await theirs.new_channel()
    await mine.group_add("user-1", mine_channel)
    await theirs.group_add("user-1", their_channel)
    await theirs.group_send("user-1", {"type": "frame", "site": "theirs"})
    await mine.group_send("user-1", {"type": "frame", "site": "mine"})
    assert (await asyncio.wait_for(mine.receive(mine_channel), 2))["site"] == "mine"
    assert (await asyncio.wait_for(theirs.receive(their_channel), 2))[
        "site"
    ] == "theirs"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(mine.receive(mine_channel), 0.3)
    await mine.flush()
    await theirs.flush()
