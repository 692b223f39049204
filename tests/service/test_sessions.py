"""The sign-in limiter: failures counted per name and per address within a sliding window."""

from __future__ import annotations

import time

from service.sessions import SignInLimiter


def test_limiter_blocks_after_the_failures_and_forgets_after_the_window() -> None:
    limiter = SignInLimiter(failures=2, window_s=0.3)
    limiter.failed("ada", "10.0.0.1")
    assert not limiter.blocked("ada", "10.0.0.2")
    limiter.failed("ada", "10.0.0.2")
    assert limiter.blocked("ada", "10.0.0.3") and not limiter.blocked("bob", "10.0.0.3")
    limiter.failed("bob", "10.0.0.2")
    assert limiter.blocked("carol", "10.0.0.2")  # the address has failed twice, whatever the name
    time.sleep(0.35)
    assert not limiter.blocked("ada", "10.0.0.2")
    assert limiter._seen == {}  # nothing kept of attempts past the window
