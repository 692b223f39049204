"""The sign-in throttle: attempts counted when admitted, a backoff per (name, address) that doubles, a looser cap
per address, success forgiving the pair, and nothing kept once the window has passed."""

from __future__ import annotations

import time

from service.throttle import SignInThrottle


def test_a_pair_gets_its_free_tries_then_waits_twice_as_long_each_time() -> None:
    throttle = SignInThrottle(free_tries=3, backoff_s=0.2, window_s=60)
    assert [throttle.admit("ada", "10.0.0.1") for _ in range(3)] == [None, None, None]
    refused = throttle.admit("ada", "10.0.0.1")
    assert refused is not None and 0.1 < refused.wait_s <= 0.2 and refused.retry_after == "1"
    assert throttle.admit("ada", "10.0.0.2") is None  # the same name from elsewhere: not locked out
    assert throttle.admit("bob", "10.0.0.1") is None  # another name from the same address: not blocked
    time.sleep(0.21)
    assert throttle.admit("ada", "10.0.0.1") is None  # the fourth try, after the first backoff
    refused = throttle.admit("ada", "10.0.0.1")
    assert refused is not None and 0.3 < refused.wait_s <= 0.4  # doubled


def test_a_right_password_forgives_the_pair() -> None:
    throttle = SignInThrottle(free_tries=2, backoff_s=60, window_s=60)
    assert throttle.admit("ada", "10.0.0.1") is None and throttle.admit("ada", "10.0.0.1") is None
    assert throttle.admit("ada", "10.0.0.1") is not None
    throttle.succeeded("ada", "10.0.0.1")
    assert throttle.admit("ada", "10.0.0.1") is None


def test_an_attempt_never_checked_does_not_count() -> None:
    throttle = SignInThrottle(free_tries=1, backoff_s=60, window_s=60)
    assert throttle.admit("ada", "10.0.0.1") is None
    throttle.not_checked("ada", "10.0.0.1")
    assert throttle.admit("ada", "10.0.0.1") is None
    assert throttle.admit("ada", "10.0.0.1") is not None


def test_an_address_is_capped_across_names_and_forgotten_after_the_window() -> None:
    throttle = SignInThrottle(free_tries=5, address_tries=3, window_s=0.3)
    assert [throttle.admit(name, "10.0.0.9") for name in ("u1", "u2", "u3")] == [None, None, None]
    refused = throttle.admit("vic", "10.0.0.9")
    assert refused is not None and "this address" in refused.message
    assert throttle.admit("vic", "10.0.0.8") is None
    time.sleep(1.05)  # past the window, and past the once-a-second pruning
    assert throttle.admit("vic", "10.0.0.9") is None
    assert set(throttle._addresses) == {"10.0.0.9"} and set(throttle._pairs) == {("vic", "10.0.0.9")}


def test_at_its_memory_bound_the_throttle_forgets_the_oldest_instead_of_refusing_everyone() -> None:
    """A flood from many addresses used to fill the bound and then refuse every sign-in, the real admin's too."""
    throttle = SignInThrottle(free_tries=1, backoff_s=60, window_s=60, max_tracked=20)
    for i in range(100):
        throttle.admit("admin", f"10.0.{i // 250}.{i % 250}")
    assert len(throttle._pairs) <= 20 and len(throttle._addresses) <= 20
    assert throttle.admit("admin", "192.0.2.1") is None  # the real admin from a fresh address
    assert throttle.admit("admin", "10.0.0.99") is not None  # a recent attacker is still made to wait
