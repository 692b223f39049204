"""The sign-in throttle: every attempt is counted when it is admitted, before its password hash is computed. Per
(name, address) a few tries are free, then each further one waits twice as long as the one before; per address a
looser cap counts failures across names. A name is never locked out everywhere: the real owner of an account
signs in from another address while someone else guesses at it."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass
class _Tries:
    """The attempts at one name from one address not yet forgiven by a success."""

    count: int = 0
    last: float = 0.0  # when the latest was admitted (time.monotonic)
    free_at: float = 0.0  # no attempt is admitted before this


@dataclass(frozen=True)
class Refusal:
    """Why an attempt was not admitted, and how long to wait (the Retry-After header)."""

    message: str
    wait_s: float

    @property
    def retry_after(self) -> str:
        return str(max(1, math.ceil(self.wait_s)))


class SignInThrottle:
    """`free_tries` attempts per (name, address), then a backoff of `backoff_s` doubling with each further
    attempt up to `max_backoff_s`; at most `address_tries` unforgiven attempts per address in `window_s`. State
    is per server process, in memory, forgotten `window_s` after an address's or a pair's last attempt."""

    def __init__(
        self,
        free_tries: int = 5,
        backoff_s: float = 30.0,
        max_backoff_s: float = 3600.0,
        address_tries: int = 50,
        window_s: float = 900.0,
        max_tracked: int = 100_000,
    ) -> None:
        self.free_tries, self.backoff_s, self.max_backoff_s = free_tries, backoff_s, max_backoff_s
        self.address_tries, self.window_s, self.max_tracked = address_tries, window_s, max_tracked
        self._pairs: dict[tuple[str, str], _Tries] = {}
        self._addresses: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._pruned_at = 0.0

    def _backoff(self, count: int) -> float:
        """How long attempt number `count` (1-based) keeps the next one waiting."""
        if count < self.free_tries:
            return 0.0
        return min(self.backoff_s * 2.0 ** (count - self.free_tries), self.max_backoff_s)

    def _prune(self, now: float) -> None:
        """Forget pairs and addresses quiet for `window_s` (at most once a second: it walks everything)."""
        if now - self._pruned_at < 1.0:
            return
        self._pruned_at = now
        for key in [k for k, t in self._pairs.items() if now >= t.free_at and now - t.last >= self.window_s]:
            del self._pairs[key]
        for address in list(self._addresses):
            times = self._addresses[address]
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if not times:
                del self._addresses[address]

    def _refusal(self, name: str, address: str, now: float) -> Refusal | None:
        tries = self._pairs.get((name, address))
        if tries is not None and now < tries.free_at:
            return Refusal("too many sign-in attempts for this name from this address", tries.free_at - now)
        times = self._addresses.get(address)
        if times is not None and len(times) >= self.address_tries:
            return Refusal("too many failed sign-ins from this address", times[0] + self.window_s - now)
        return None

    def _make_room(self) -> None:
        """At the memory bound, forget the least recently active tenth of the pairs (or addresses) rather than
        refuse everyone: a flood from many addresses must not lock the real admin out."""
        drop = max(1, self.max_tracked // 10)
        if len(self._pairs) >= self.max_tracked:
            for key in sorted(self._pairs, key=lambda pair: self._pairs[pair].last)[:drop]:
                del self._pairs[key]
        if len(self._addresses) >= self.max_tracked:
            latest = {address: (times[-1] if times else 0.0) for address, times in self._addresses.items()}
            for address in sorted(latest, key=latest.__getitem__)[:drop]:
                del self._addresses[address]

    def admit(self, name: str, address: str) -> Refusal | None:
        """Count an attempt at `name` from `address` before its password is checked; a Refusal when it must wait."""
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            refusal = self._refusal(name, address, now)
            if refusal is not None:
                return refusal
            self._make_room()
            tries = self._pairs.setdefault((name, address), _Tries())
            tries.count += 1
            tries.last = now
            tries.free_at = now + self._backoff(tries.count)
            self._addresses.setdefault(address, deque()).append(now)
            return None

    def _give_back(self, address: str) -> None:
        times = self._addresses.get(address)
        if times:
            times.pop()

    def succeeded(self, name: str, address: str) -> None:
        """The password was right: the pair's attempts are forgiven, and this one leaves the address's count."""
        with self._lock:
            self._pairs.pop((name, address), None)
            self._give_back(address)

    def not_checked(self, name: str, address: str) -> None:
        """An admitted attempt whose password was never checked (the server was busy): it does not count."""
        with self._lock:
            tries = self._pairs.get((name, address))
            if tries is not None and tries.count > 0:
                tries.count -= 1
                tries.free_at = tries.last + self._backoff(tries.count)
            self._give_back(address)
