"""Loaded by pytest before Django settings (``-p testing.pytest_env``).

Without REDIS_URL the test run starts its own real Redis (the embedded one) so tests of the
channel layer, Celery and OTP run against Redis on any machine.
"""

from __future__ import annotations

import atexit
import os

if not os.environ.get("REDIS_URL"):
    from config import embedded_redis

    _process, _url = embedded_redis.start()
    os.environ["REDIS_URL"] = _url
    atexit.register(_process.terminate)

# Tests log in by password as any role; the second-factor tests require it for themselves
# (settings.MFA_REQUIRED_ROLES). Live server processes inherit this.
os.environ.setdefault("MFA_REQUIRED_ROLES", "")
