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
"""

import time

from channels.layers import InMemoryChannelLayer

SWEEP_SECONDS = 1.0


class SweepingInMemoryChannelLayer(InMemoryChannelLayer):
    _last_sweep = 0.0

    def _clean_expired(self):
        now = time.monotonic()
        if now - self._last_sweep >= SWEEP_SECONDS:
            self._last_sweep = now
            super()._clean_expired()


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

    return {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_url, **redis_connection_options()}]},
        }
    }
