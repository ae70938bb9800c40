"""How every Redis connection of the app rides out a Redis restart: retry with a short
backoff instead of failing the first command after the connection dropped."""

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

RETRIES = 8  # with a 1 s cap: a restart of a few seconds is ridden out
MAX_CONNECTIONS = 1000  # redis-py's default of 100 ran out with hundreds of replies


def redis_connection_options() -> dict:
    """Keyword arguments for redis.asyncio connections (channels-redis pools included)."""
    return {
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), RETRIES),
        "retry_on_error": [ConnectionError, TimeoutError, ConnectionResetError],
        "health_check_interval": 15,
        "max_connections": MAX_CONNECTIONS,
    }
