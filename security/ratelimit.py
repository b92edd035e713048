"""Failed logins per user name and per client address, counted with the ``limits`` library.

The counts live in memory for one process, or in Redis when the event log is Redis (so several
workers and hosts share them). If Redis stops answering, logins are not blocked: the check is skipped
with a warning, since refusing every login would hand an outage to anyone who can reach Redis.
"""

from __future__ import annotations

import logging
import time

from limits import RateLimitItemPerSecond, storage
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)

WINDOW_S = 15 * 60
ADDRESS_FACTOR = 4


class LoginLimiter:
    def __init__(self, attempts: int, event_log_url: str):
        self.item = RateLimitItemPerSecond(attempts, WINDOW_S)
        # An address (a proxy, an office NAT) carries many people: it gets more tries than one name.
        self.address_item = RateLimitItemPerSecond(attempts * ADDRESS_FACTOR, WINDOW_S)
        if event_log_url.startswith(("redis://", "rediss://")):
            url = event_log_url.split("?", 1)[0]
            self.storage = storage.storage_from_string(url, key_prefix="mlops-login")
        else:
            self.storage = storage.MemoryStorage()
        self.limiter = MovingWindowRateLimiter(self.storage)

    def _keys(self, user: str, address: str) -> list[tuple[object, str, str]]:
        return [(self.item, "user", user.lower()[:64]), (self.address_item, "addr", address or "?")]

    def retry_after(self, user: str, address: str) -> int:
        """Seconds until another attempt is allowed; 0 when one is allowed now."""
        try:
            waits = []
            for item, *key in self._keys(user, address):
                if not self.limiter.test(item, *key):
                    reset, _remaining = self.limiter.get_window_stats(item, *key)
                    waits.append(max(1, int(reset - time.time()) + 1))
            return max(waits, default=0)
        except Exception as exc:  # the shared store is down: do not lock everyone out
            log.warning("login rate limit not checked: %s", exc)
            return 0

    def failed(self, user: str, address: str) -> None:
        try:
            for item, *key in self._keys(user, address):
                self.limiter.hit(item, *key)
        except Exception as exc:
            log.warning("failed login not counted: %s", exc)

    def succeeded(self, user: str) -> None:
        try:
            item, *key = self._keys(user, "")[0]
            self.limiter.clear(item, *key)
        except Exception as exc:
            log.warning("login count not cleared: %s", exc)
