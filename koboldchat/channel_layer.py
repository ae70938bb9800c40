"""The channel layers: in memory for one process, Redis pub/sub across processes.

Channels' in-memory layer sweeps every channel and group on every group_send and
receive, so a process with N sockets pays O(N) per frame; with hundreds of sockets
streaming, the sweep was most of the work. Ours sweeps at most once a second: expired
messages still go, only a little later.

Across processes we use channels-redis' pub/sub layer, not its list-based core layer.
In the core layer all channels of a process share one Redis list, read by whichever
`receive()` holds the process's lock; when that receive is cancelled (a socket closes, a
reply job ends, a wait times out) just as Redis hands it a message, the message, meant
for another socket, is lost (tests/chat/test_channel_layer.py shows it). In the pub/sub
layer one task per process reads Redis and `receive()` only waits on a local queue, so
cancelling it loses nothing but its own channel. Frames are live only; a client that
missed some resumes from a snapshot, so the pub/sub layer's at-most-once delivery is
what the protocol already expects.

channels-redis' pub/sub layer publishes one message per Redis round trip, under a lock
per connection: with a hundred replies streaming, every frame of the process waited for
the round trips of all the frames before it. Ours queues the publishes and sends what
queued up meanwhile (all that one loop turn produced, at least) in one pipeline, in
order; each `group_send` still returns once its own message is with Redis.
"""

import asyncio
import time
from urllib.parse import urlsplit

from channels.layers import InMemoryChannelLayer
from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
)
from channels_redis.utils import _wrap_close

SWEEP_SECONDS = 1.0


class SweepingInMemoryChannelLayer(InMemoryChannelLayer):
    _last_sweep = 0.0

    def _clean_expired(self):
        now = time.monotonic()
        if now - self._last_sweep >= SWEEP_SECONDS:
            self._last_sweep = now
            super()._clean_expired()


class PipelinedShardConnection(RedisSingleShardConnection):
    """One Redis connection of the layer: publishes go out in pipelines, not alone."""

    def __init__(self, host, channel_layer):
        super().__init__(host, channel_layer)
        self._queued: list[tuple[str, bytes, asyncio.Future]] = []
        self._sender: asyncio.Task | None = None

    async def publish(self, channel, message):
        done = asyncio.get_running_loop().create_future()
        self._queued.append((channel, message, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._send_queued())
        await done

    async def _send_queued(self) -> None:
        async with self._lock:  # also keeps (un)subscribes in order with publishes
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    self._ensure_redis()
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for channel, message, _ in batch:
                            pipe.publish(channel, message)
                        await pipe.execute()
                except Exception as exc:
                    _settle(batch, exc)
                except BaseException:  # cancelled: no publisher may wait forever
                    _settle(batch + self._queued, None, cancelled=True)
                    self._queued = []
                    raise
                else:
                    _settle(batch, None)


def _settle(batch, error: Exception | None, *, cancelled: bool = False) -> None:
    for _, _, done in batch:
        if done.done():  # its publisher was cancelled meanwhile
            continue
        if cancelled:
            done.cancel()
        elif error is None:
            done.set_result(None)
        else:
            done.set_exception(error)


class PipelinedLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._shards = [PipelinedShardConnection(s.host, self) for s in self._shards]


class PipelinedRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    """channels-redis' pub/sub layer whose publishes share pipelines."""

    def _get_layer(self):
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = PipelinedLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer


def channel_layers_config(redis_url: str) -> dict:
    """Django's CHANNEL_LAYERS for a REDIS_URL (empty: one process, in memory)."""
    if not redis_url:
        return {
            "default": {
                "BACKEND": "koboldchat.channel_layer.SweepingInMemoryChannelLayer",
                "CONFIG": {"capacity": 2000, "expiry": 60},
            }
        }
    from koboldchat.redis_retry import redis_connection_options

    # Redis's pub/sub ignores the database number: the prefix keeps the frames of two
    # sites on one Redis server (databases 0 and 1, say) apart.
    db = (urlsplit(redis_url).path.strip("/") or "0").split("/")[0]
    return {
        "default": {
            "BACKEND": "koboldchat.channel_layer.PipelinedRedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": redis_url, **redis_connection_options()}],
                "prefix": f"koboldchat-db{db}",
            },
        }
    }
