"""One-time codes against the real Redis the test run uses (embedded or REDIS_URL)."""

from __future__ import annotations

from typing import cast

import pytest
from django.core.cache import cache

from accounts import otp
from testing.auth_cache import cache_redis

PURPOSE = "password_reset"


def redis_dump() -> bytes:
    """Every key and value in the cache's Redis database, raw."""
    client = cache_redis()
    blob = b""
    for key in client.scan_iter():
        blob += key + b"=" + (client.dump(key) or b"") + b"\n"
    return blob


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_a_code_is_six_digits_and_works_once():
    code = otp.otp_issue(purpose=PURPOSE, user_id=1)
    assert len(code) == 6 and code.isdigit()
    otp.otp_verify(purpose=PURPOSE, user_id=1, code=code)
    with pytest.raises(otp.CodeInvalid):
        otp.otp_verify(purpose=PURPOSE, user_id=1, code=code)


def test_redis_holds_only_a_keyed_hash_of_the_code():
    code = otp.otp_issue(purpose=PURPOSE, user_id=7)
    dump = redis_dump()
    assert b"otp:password_reset:7" in dump
    assert code.encode() not in dump
    record = cache.get("otp:password_reset:7")
    assert record["digest"] == otp.code_digest(purpose=PURPOSE, user_id=7, code=code)
    assert code not in repr(record)
    # Bound to the user: the same code for another user has another digest.
    assert otp.code_digest(purpose=PURPOSE, user_id=8, code=code) != record["digest"]


def test_the_code_expires_after_the_ttl(settings, monkeypatch):
    settings.OTP_TTL_SECONDS = 600
    start = otp._now()
    monkeypatch.setattr(otp, "_now", lambda: start)
    code = otp.otp_issue(purpose=PURPOSE, user_id=1)
    late = otp.otp_issue(purpose=PURPOSE, user_id=2)
    monkeypatch.setattr(otp, "_now", lambda: start + 599)
    otp.otp_verify(purpose=PURPOSE, user_id=1, code=code)  # still valid just before the end

    monkeypatch.setattr(otp, "_now", lambda: start + 601)
    with pytest.raises(otp.CodeExpired):
        otp.otp_verify(purpose=PURPOSE, user_id=2, code=late)
    # Still expired (not "invalid") however often it is tried.
    with pytest.raises(otp.CodeExpired):
        otp.otp_verify(purpose=PURPOSE, user_id=2, code=late)


def test_redis_forgets_the_code_on_its_own(settings):
    settings.OTP_TTL_SECONDS = 600
    otp.otp_issue(purpose=PURPOSE, user_id=3)
    client = cache_redis()
    key = cache.make_key("otp:password_reset:3")
    # redis-py types a reply as ``Awaitable | Any`` (shared with its asyncio client).
    ttl = cast("int", client.ttl(key))
    assert 600 < ttl <= 600 + otp.EXPIRED_GRACE_SECONDS
    assert 0 < cast("int", client.ttl(cache.make_key("otp:password_reset:3:attempts"))) <= ttl


def test_five_wrong_attempts_void_the_code(settings):
    settings.OTP_MAX_ATTEMPTS = 5
    code = otp.otp_issue(purpose=PURPOSE, user_id=1)
    for left in (4, 3, 2, 1):
        with pytest.raises(otp.CodeInvalid) as caught:
            otp.otp_verify(purpose=PURPOSE, user_id=1, code=wrong(code))
        assert f"{left} attempt" in (caught.value.details or {})["code"][0]
    with pytest.raises(otp.TooManyAttempts):
        otp.otp_verify(purpose=PURPOSE, user_id=1, code=wrong(code))
    # The right code no longer works.
    with pytest.raises(otp.TooManyAttempts):
        otp.otp_verify(purpose=PURPOSE, user_id=1, code=code)


def test_the_right_code_on_the_last_allowed_attempt_works(settings):
    settings.OTP_MAX_ATTEMPTS = 5
    code = otp.otp_issue(purpose=PURPOSE, user_id=1)
    for _ in range(4):
        with pytest.raises(otp.CodeInvalid):
            otp.otp_verify(purpose=PURPOSE, user_id=1, code=wrong(code))
    otp.otp_verify(purpose=PURPOSE, user_id=1, code=code)


def test_a_new_code_replaces_the_old_one_and_resets_the_attempts(settings):
    settings.OTP_MAX_ATTEMPTS = 2
    old = otp.otp_issue(purpose=PURPOSE, user_id=1)
    with pytest.raises(otp.CodeInvalid):
        otp.otp_verify(purpose=PURPOSE, user_id=1, code=wrong(old))
    new = otp.otp_issue(purpose=PURPOSE, user_id=1)
    if new != old:
        with pytest.raises(otp.CodeInvalid):
            otp.otp_verify(purpose=PURPOSE, user_id=1, code=old)
    else:  # one chance in a million: burn the attempt another way
        with pytest.raises(otp.CodeInvalid):
            otp.otp_verify(purpose=PURPOSE, user_id=1, code=wrong(old))
    otp.otp_verify(purpose=PURPOSE, user_id=1, code=new)


def test_no_code_issued_is_invalid():
    with pytest.raises(otp.CodeInvalid):
        otp.otp_verify(purpose=PURPOSE, user_id=99, code="123456")


def test_codes_of_different_users_are_independent():
    one = otp.otp_issue(purpose=PURPOSE, user_id=1)
    two = otp.otp_issue(purpose=PURPOSE, user_id=2)
    if one != two:
        with pytest.raises(otp.CodeInvalid):
            otp.otp_verify(purpose=PURPOSE, user_id=1, code=two)
    otp.otp_verify(purpose=PURPOSE, user_id=2, code=two)
    otp.otp_verify(purpose=PURPOSE, user_id=1, code=one)


def test_codes_are_random():
    codes = {otp.otp_issue(purpose=PURPOSE, user_id=n) for n in range(50)}
    assert len(codes) > 40


def _race(count: int, attempt) -> list[str]:
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    barrier = Barrier(count)

    def run(_: int) -> str:
        barrier.wait()
        try:
            attempt()
        except otp.CodeInvalid:
            return "invalid"
        except otp.TooManyAttempts:
            return "too_many"
        return "ok"

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_parallel_guesses_cannot_exceed_the_attempt_limit(settings):
    settings.OTP_MAX_ATTEMPTS = 5
    code = otp.otp_issue(purpose=PURPOSE, user_id=1)
    outcomes = _race(20, lambda: otp.otp_verify(purpose=PURPOSE, user_id=1, code=wrong(code)))
    assert outcomes.count("invalid") == 4
    assert outcomes.count("too_many") == 16
    with pytest.raises(otp.TooManyAttempts):
        otp.otp_verify(purpose=PURPOSE, user_id=1, code=code)


def test_parallel_use_of_the_right_code_succeeds_once(settings):
    settings.OTP_MAX_ATTEMPTS = 10
    code = otp.otp_issue(purpose=PURPOSE, user_id=1)
    outcomes = _race(6, lambda: otp.otp_verify(purpose=PURPOSE, user_id=1, code=code))
    assert outcomes.count("ok") == 1
    assert outcomes.count("invalid") == 5
