"""The in-memory channel layer, with its expiry sweep run at most once a second.

Channels' own layer sweeps every channel and group on every group_send and receive, so a
process with N sockets pays O(N) per frame; with hundreds of sockets streaming, the sweep
was most of the work. Expired messages still go, only a little later.
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
