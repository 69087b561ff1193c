"""The errors that mean "Redis is unreachable or refused the command" (one home for the tuple
that the degrade paths catch: the channel layer, the cache, the readings stream)."""

from __future__ import annotations

import redis

# redis-py raises its own ConnectionError and TimeoutError (RedisError subclasses); a socket
# that breaks under the asyncio client can surface as a bare OSError.
REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, OSError)
