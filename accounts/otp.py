"""One-time codes kept in Redis (through Django's cache), for the password reset.

A code is six digits from ``secrets``. Redis holds only an HMAC-SHA256 of it (keyed with
SECRET_KEY, bound to the user and the purpose), so a Redis dump does not reveal live codes
and a 10^6 code space cannot be brute-forced offline without the key.

Rules: a code expires after ``OTP_TTL_SECONDS``; it works once; ``OTP_MAX_ATTEMPTS`` wrong
attempts void it; issuing a new code replaces the previous one. The wrong-attempt counter is a
separate key bumped with Redis INCR, so parallel guesses cannot overrun the limit.

Beyond the per-code limit, an account takes at most ``OTP_ACCOUNT_MAX_ATTEMPTS`` attempts per
``OTP_ACCOUNT_WINDOW_SECONDS``, counted across codes: requesting a new code does not reset that
count, so guesses have an overall bound (10 an hour: one in 100,000 a day for a 6-digit code).
"""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.core.cache import cache
from django.utils.crypto import constant_time_compare, salted_hmac

from common.errors import ApplicationError

CODE_DIGITS = 6
# An expired record is kept a while longer so the caller hears "expired", not "invalid".
EXPIRED_GRACE_SECONDS = 3600


class CodeInvalid(ApplicationError, status=400, code="invalid_code"): ...


class CodeExpired(ApplicationError, status=400, code="code_expired"): ...


class TooManyAttempts(ApplicationError, status=400, code="too_many_attempts"): ...


def _now() -> float:
    return time.time()


def _key(purpose: str, user_id: int) -> str:
    return f"otp:{purpose}:{user_id}"


def _attempts_key(purpose: str, user_id: int) -> str:
    return f"otp:{purpose}:{user_id}:attempts"


def _window_key(purpose: str, user_id: int) -> str:
    return f"otp:{purpose}:{user_id}:window"


def _window_count(purpose: str, user_id: int) -> int:
    """Count one attempt in the account's window (which starts at its first attempt)."""
    key = _window_key(purpose, user_id)
    cache.add(key, 0, settings.OTP_ACCOUNT_WINDOW_SECONDS)
    try:
        return int(cache.incr(key))
    except ValueError:  # the window ended between add and incr: this attempt opens a new one
        cache.set(key, 1, settings.OTP_ACCOUNT_WINDOW_SECONDS)
        return 1


def code_digest(*, purpose: str, user_id: int, code: str) -> str:
    return salted_hmac(
        f"accounts.otp.{purpose}", f"{user_id}:{code}", algorithm="sha256"
    ).hexdigest()


def otp_issue(*, purpose: str, user_id: int) -> str:
    """Make a new code for the user, replacing any earlier one; returns the plain code."""
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    ttl = settings.OTP_TTL_SECONDS
    record = {
        "digest": code_digest(purpose=purpose, user_id=user_id, code=code),
        "expires_at": int(_now()) + ttl,
        "void": False,
    }
    keep = ttl + EXPIRED_GRACE_SECONDS
    cache.set_many({_key(purpose, user_id): record, _attempts_key(purpose, user_id): 0}, keep)
    return code


def otp_verify(*, purpose: str, user_id: int, code: str) -> None:
    """Accept the code once, or raise ``CodeInvalid``, ``CodeExpired`` or ``TooManyAttempts``."""
    key, attempts_key = _key(purpose, user_id), _attempts_key(purpose, user_id)
    record = cache.get(key)
    if record is None:
        raise CodeInvalid("The code is not valid. Request a new one.")
    if record["void"]:
        raise TooManyAttempts("Too many wrong codes. Request a new one.")
    if _now() >= record["expires_at"]:
        raise CodeExpired("The code has expired. Request a new one.")
    if _window_count(purpose, user_id) > settings.OTP_ACCOUNT_MAX_ATTEMPTS:
        raise TooManyAttempts("Too many attempts for this account. Try again later.")
    try:
        attempts = cache.incr(attempts_key)
    except ValueError:  # the counter vanished (evicted): treat the code as gone
        raise CodeInvalid("The code is not valid. Request a new one.") from None
    limit = settings.OTP_MAX_ATTEMPTS
    if attempts > limit:
        raise TooManyAttempts("Too many wrong codes. Request a new one.")
    expected = code_digest(purpose=purpose, user_id=user_id, code=str(code))
    if not constant_time_compare(expected, record["digest"]):
        if attempts >= limit:
            _void(key, record)
            raise TooManyAttempts("Too many wrong codes. Request a new one.")
        raise CodeInvalid(
            "The code is not valid.",
            details={"code": [f"Wrong code; {limit - attempts} attempt(s) left."]},
        )
    # Single use: only the caller whose delete removed the record wins a parallel race.
    if not cache.delete(key):
        raise CodeInvalid("The code is not valid. Request a new one.")
    # The attempts counter is left to expire: deleting it here could race with a parallel
    # INCR that would re-create it without a TTL.


def otp_discard(*, purpose: str, user_id: int) -> None:
    cache.delete_many([_key(purpose, user_id), _attempts_key(purpose, user_id)])


def _void(key: str, record: dict) -> None:
    remaining = max(int(record["expires_at"] - _now()), 0) + EXPIRED_GRACE_SECONDS
    cache.set(key, {**record, "void": True}, remaining)
