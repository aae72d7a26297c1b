"""Retries with exponential back-off for transient network errors.

Downloads fail in two ways that need opposite handling: *permanent* failures (HTTP
404, a private or removed video, a wrong password) will fail again, so they are
reported at once; *transient* ones (a dropped connection, a timeout, HTTP 5xx or 429)
usually succeed on a later try, after a pause that doubles each time so that a
struggling server is not hammered. The caller decides which is which.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    Attributes:
        retries: extra attempts after the first one (0 = try once).
        backoff: pause before the first retry, in seconds; it doubles on each retry
            (2, 4, 8, ... s by default). Tests use a few milliseconds.
    """

    retries: int = 3
    backoff: float = 2.0

    def __post_init__(self):
        if self.retries < 0 or self.backoff < 0:
            raise ValueError(f"retries and backoff must be >= 0, got {self}")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        return self.backoff * (2.0**retry)

    def call(
        self,
        attempt: Callable[[], T],
        is_transient: Callable[[Exception], bool],
        describe: str = "request",
    ) -> T:
        """Run ``attempt()`` until it returns.

        An error for which ``is_transient(error)`` is false is re-raised at once; a
        transient one is retried after :meth:`delay` seconds, and re-raised when no
        retry is left.
        """
        retry = 0
        while True:
            try:
                return attempt()
            except Exception as error:
                if retry >= self.retries or not is_transient(error):
                    raise
                pause = self.delay(retry)
                retry += 1
                logger.debug(
                    "%s failed (%s); retry %d/%d in %.2f s",
                    describe,
                    error,
                    retry,
                    self.retries,
                    pause,
                )
                time.sleep(pause)
