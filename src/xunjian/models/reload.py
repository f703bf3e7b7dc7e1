"""Hot reload: the service and workers pick up a promoted model without a restart.

:class:`ReloadingDetectorSet` holds the :class:`~xunjian.models.detector.DetectorSet` in
service. :meth:`ReloadingDetectorSet.current` returns it; at most every ``interval_s`` seconds
(of an injectable clock) it first reads the registry's active pointers — one small GET per
detector — and, when one moved (a promotion or a rollback), loads the new version and swaps
in a new set. Unchanged detectors are reused as they are. The swap replaces one reference, so
a batch that already holds a set keeps it to the end: call ``current()`` once per batch and
pass what it returns down::

    reloading = ReloadingDetectorSet.from_settings(settings, store)
    for batch_id in batches:                      # service worker / Celery task
        detectors = reloading.current()           # cheap: a pointer check every N seconds
        process_batch(services, batch_id, detectors=detectors)

A version that fails to load (a corrupt download, a store outage) is logged and retried at
the next check while the detector in service stays; so does a pointer that cannot be read.
Only the first load fails loudly: there is nothing to keep serving then. A detector with
neither a promoted version nor shipped weights is left out and named in :attr:`missing`
(its checks cannot run — said, not hidden).

The check runs in the calling thread; other threads asking meanwhile get the set in service
at once, never a half-built one.

May import: the standard library, ``xunjian.errors``, ``xunjian.models`` (versions, detector),
``xunjian.storage.objectstore``, ``xunjian.settings``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from xunjian.core.taxonomy import Detector as DetectorName
from xunjian.errors import DetectorError, XunjianError
from xunjian.models.detector import Detector, DetectorSet
from xunjian.models.versions import ModelRegistry

if TYPE_CHECKING:
    from xunjian.settings import Settings
    from xunjian.storage.objectstore import ObjectStore

log = logging.getLogger(__name__)

SHIPPED = "<shipped>"


class ReloadingDetectorSet:
    """The detector set in service, reloaded when the registry's pointers move."""

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        detectors: Sequence[str] | None = None,
        interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s < 0:
            raise ValueError(f"expected interval_s >= 0, got {interval_s}")
        self.registry = registry
        self.names = list(detectors) if detectors else [d.value for d in DetectorName]
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._first = threading.Lock()
        self._set: DetectorSet | None = None
        self._loaded: dict[str, tuple[str, Detector]] = {}  # name → (pointer value, detector)
        self._checked_at = 0.0
        self._checking = False
        self.missing: list[str] = []
        self.errors: dict[str, str] = {}
        self.reloads = 0

    @classmethod
    def from_settings(
        cls, settings: Settings, store: ObjectStore | None = None
    ) -> ReloadingDetectorSet:
        return cls(
            ModelRegistry.from_settings(settings, store),
            interval_s=settings.model_reload_interval_s,
        )

    @property
    def versions(self) -> dict[str, str]:
        """Detector name → model version of the set in service."""
        return {name: d.version for name, (_, d) in self._loaded.items()}

    def current(self) -> DetectorSet:
        """The set to run the next batch with (checked against the pointers when due)."""
        if self._set is None:
            with self._first:  # the first load blocks every caller: nothing to serve yet
                if self._set is None:
                    self._check(first=True)
            return self._serving()
        with self._lock:
            due = not self._checking and self._clock() - self._checked_at >= self.interval_s
            if due:
                self._checking = True
            held = self._set
        if not due:
            return held
        try:
            self._check(first=False)
        finally:
            with self._lock:
                self._checking = False
        return self._serving()

    def _serving(self) -> DetectorSet:
        held = self._set
        if held is None:  # only when the first load raised
            raise DetectorError("no detector set has been loaded")
        return held

    def refresh(self) -> bool:
        """Checks the pointers now; True when the set in service changed."""
        before = self._set
        if before is None:
            self.current()
        else:
            self._check(first=False)
        return self._set is not before

    def _pointer(self, name: str) -> str:
        version = self.registry.active_version(name)
        return version if version is not None else SHIPPED

    def _check(self, *, first: bool) -> None:
        self._checked_at = self._clock()
        wanted: dict[str, str] = {}
        for name in self.names:
            try:
                wanted[name] = self._pointer(name)
            except XunjianError as error:
                if first:
                    raise
                log.warning("cannot read the active model of %s: %s", name, error)
                self.errors[name] = str(error)
        changed = False
        loaded = dict(self._loaded)
        missing: list[str] = []
        for name, pointer in wanted.items():
            if name in loaded and loaded[name][0] == pointer:
                continue
            try:
                version = None if pointer == SHIPPED else pointer
                loaded[name] = (pointer, self.registry.load(name, version))
                self.errors.pop(name, None)
                changed = True
                log.info("detector %s now runs %s", name, loaded[name][1].version)
            except XunjianError as error:
                self.errors[name] = str(error)
                if name in loaded:
                    log.warning("keeping %s %s: %s", name, loaded[name][1].version, error)
                else:
                    log.warning("detector %s unavailable: %s", name, error)
                    missing.append(name)
        self.missing = missing
        if not changed and self._set is not None:
            return
        detectors = [loaded[n][1] for n in self.names if n in loaded]
        if not detectors:
            raise DetectorError(
                "no detector model is available: "
                + "; ".join(f"{n}: {e}" for n, e in self.errors.items())
            )
        new_set = DetectorSet(detectors)
        with self._lock:
            self._loaded = loaded
            self._set = new_set
            self.reloads += 0 if first else 1
