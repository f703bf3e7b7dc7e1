"""Riding out outages: wait for the object store or the database to come back, then go on.

A batch is worth finishing after a short outage, not failing frame by frame: a frame that
cannot be read because the store is down is not a bad frame. So the stages let
``StorageUnavailableError`` / ``DatabaseUnavailableError`` through (they never record them as
a frame's failure), and :func:`ride_out` runs the whole batch again after a pause, with
exponential backoff, until it succeeds or ``max_wait_s`` has passed — then the last error is
raised, naming what was unavailable. Running a batch again is cheap and safe: every stage is
idempotent and the detection ledger keeps what was already detected.

May import: the standard library and ``xunjian.errors``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from xunjian.errors import DatabaseUnavailableError, StorageUnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")
TRANSIENT: tuple[type[Exception], ...] = (StorageUnavailableError, DatabaseUnavailableError)
FIRST_PAUSE_S = 1.0
LONGEST_PAUSE_S = 30.0


def ride_out(
    work: Callable[[], T],
    *,
    what: str,
    max_wait_s: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_pause: Callable[[Exception, float], None] | None = None,
) -> T:
    """``work()``, run again after each transient outage until ``max_wait_s`` has passed."""
    started = clock()
    pause = FIRST_PAUSE_S
    while True:
        try:
            return work()
        except TRANSIENT as exc:
            waited = clock() - started
            if waited >= max_wait_s:
                log.error("%s: gave up after %.0f s of outage: %s", what, waited, exc)
                raise
            pause = min(pause, max_wait_s - waited)
            log.warning("%s: %s; trying again in %.1f s", what, exc, pause)
            if on_pause is not None:
                on_pause(exc, pause)
            sleep(pause)
            pause = min(2 * pause, LONGEST_PAUSE_S)
