"""Distributed detect stage: Celery workers fill the detection ledger, the pipeline does the rest.

Detection is where the time goes, so it is what scales out. :class:`CeleryDetectRunner` splits
a batch's frames not yet in the detection ledger (``storage.detections``) into chunks and sends
each chunk as one ``xunjian.detect_frames`` task; any number of ``xunjian worker`` processes,
on any machines that reach the broker, the database and the object store, run them: read the
frame from the object store, detect, write the boxes and the ledger row to the database in one
transaction. Only keys travel through the broker; pixels go through the object store and boxes
through the database. When every chunk has answered, :func:`~xunjian.inspect.pipeline.process_batch`
goes on in-process and finds every frame in the ledger (georef, fusion, evidence and
verification are cheap and need the whole batch at once).

Crash safety: tasks are acknowledged late and rejected when their worker dies
(``task_acks_late``, ``task_reject_on_worker_lost``, prefetch 1), so the broker hands a task
whose worker was SIGKILLed to another worker. A frame a dead worker had already finished is in
the ledger and is skipped; one it was working on is done again and written once (the ledger
row and its boxes commit together, and the ledger is unique per frame and model version). So
the batch ends with exactly the boxes — hence exactly the issues — of an in-process run.

Routing: frames larger than ``worker_large_pixels`` go to ``worker_large_queue`` when one is
set (GPU machines consume it), the others to ``worker_queue``; a worker may consume both.
Workers load their detectors once per process: the shipped / active models, or the callable
named by ``worker_detectors`` ("module:function" returning a DetectorSet — tests and special
backends). A worker whose model versions differ from the batch's refuses the task by name.

May import: Celery, ``xunjian.core``, ``xunjian.models``, ``xunjian.storage``, ``xunjian.inspect``.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xunjian.core.records import Frame
from xunjian.errors import (
    ConfigurationError,
    DetectorError,
    InputError,
    StorageError,
    StorageUnavailableError,
    XunjianError,
)
from xunjian.inspect.resilience import TRANSIENT
from xunjian.settings import Settings, get_settings

if TYPE_CHECKING:
    from celery import Celery

    from xunjian.inspect.pipeline import Services
    from xunjian.models.detector import DetectorSet

log = logging.getLogger(__name__)

TASK_NAME = "xunjian.detect_frames"
DEFAULT_CHUNK = 4


def celery_app(settings: Settings | None = None) -> Celery:
    """The Celery application for ``settings`` (broker, result backend, crash-safe acks)."""
    from celery import Celery

    s = settings or get_settings()
    if not s.broker_url:
        raise ConfigurationError(
            "broker_url: expected a broker URL such as amqp://guest:guest@127.0.0.1:5672// or "
            "redis://127.0.0.1:6379/0 to run workers, got none (set XUNJIAN_BROKER_URL)"
        )
    app = Celery("xunjian", broker=s.broker_url, backend=s.result_backend)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=s.worker_queue,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # Redis re-delivers an unacknowledged task only after this long (RabbitMQ at once).
        broker_transport_options={"visibility_timeout": s.worker_visibility_timeout_s},
    )
    # An outage of the store or the database is waited out: the task is retried with
    # exponential backoff (capped at 60 s) for about as long as a local batch would wait.
    app.task(
        name=TASK_NAME,
        autoretry_for=TRANSIENT,
        retry_backoff=True,
        retry_backoff_max=60,
        max_retries=max(1, int(s.outage_max_wait_s // 30)),
    )(detect_frames)
    return app


# -- the worker side ---------------------------------------------------------------------------


@dataclass
class _WorkerState:
    services: Services
    detectors: DetectorSet


_state: _WorkerState | None = None


def load_worker_detectors(settings: Settings) -> DetectorSet:
    """The worker's detectors: ``worker_detectors`` ("module:function") or the shipped set."""
    if settings.worker_detectors:
        module_name, _, func_name = settings.worker_detectors.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), func_name)
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(
                f"worker_detectors: expected module:function, got "
                f"{settings.worker_detectors!r} ({exc})"
            ) from exc
        found: DetectorSet = factory()
        return found
    from xunjian.inspect.pipeline import load_available_detectors

    detectors, _missing = load_available_detectors()
    return detectors


def _worker_state() -> _WorkerState:
    global _state
    if _state is None:
        from xunjian.inspect.pipeline import Services

        settings = get_settings()
        _state = _WorkerState(Services.open(settings), load_worker_detectors(settings))
    return _state


def detect_frames(batch_id: str, frame_keys: list[str], versions: dict[str, str]) -> dict[str, Any]:
    """The task: detect ``frame_keys`` of ``batch_id`` with ``versions`` into the ledger."""
    from xunjian.inspect.detect import DetectOptions, detect_frame

    state = _worker_state()
    have = {d.name: d.version for d in state.detectors}
    wrong = {n: v for n, v in versions.items() if have.get(n) != v}
    if wrong:
        raise DetectorError(
            f"worker {socket.gethostname()}:{os.getpid()} has models {have}, "
            f"expected {versions} for batch {batch_id!r}"
        )
    services = state.services
    wanted = set(frame_keys)
    frames = [f for f in services.catalog.frames(batch_id) if f.key in wanted]
    missing = wanted - {f.key for f in frames}
    ledger = services.detections.load_batch(batch_id, versions)
    options = DetectOptions(
        max_pixels=services.settings.max_image_pixels, target_gsd_m=services.settings.detect_gsd_m
    )
    done = skipped = 0
    failed: list[list[str]] = [[k, "not in the catalog"] for k in sorted(missing)]
    for frame in frames:
        held = ledger.get(frame.key)
        if held is not None and held.done >= set(versions):
            skipped += 1
            continue
        try:
            found = detect_frame(
                state.detectors,
                services.store.get_bytes(frame.key),
                frame=frame if frame.georeferenceable else None,
                frame_key=frame.key,
                source=frame.key,
                options=options,
            )
        except StorageUnavailableError:
            raise  # the store is down, not the frame bad: Celery retries the task
        except (InputError, StorageError) as exc:
            failed.append([frame.key, str(exc)])
            continue
        services.detections.save(batch_id, frame.key, versions, found.detections)
        done += 1
    return {
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "detected": done,
        "skipped": skipped,
        "failed": failed,
    }


# -- the orchestrating side --------------------------------------------------------------------


@dataclass
class CeleryDetectRunner:
    """Fills the detection ledger of a batch through Celery workers (see the module docstring).

    Pass as ``process_batch(..., detect_runner=CeleryDetectRunner(app))``.
    """

    app: Celery
    chunk_size: int = DEFAULT_CHUNK
    timeout_s: float = 3600.0
    large_pixels: int | None = None
    large_queue: str | None = None
    stall_s: float = 300.0
    poll_s: float = 2.0

    @classmethod
    def from_settings(cls, settings: Settings) -> CeleryDetectRunner:
        return cls(
            celery_app(settings),
            chunk_size=settings.worker_chunk_frames,
            timeout_s=settings.worker_timeout_s,
            large_pixels=settings.worker_large_pixels,
            large_queue=settings.worker_large_queue,
            stall_s=settings.worker_stall_s,
        )

    def __call__(
        self, services: Services, batch_id: str, frames: Sequence[Frame], detectors: DetectorSet
    ) -> dict[str, Any]:
        from celery import group

        versions = {d.name: d.version for d in detectors}
        ledger = services.detections.load_batch(batch_id, versions)
        todo = [f for f in frames if f.key not in ledger or not ledger[f.key].done >= set(versions)]
        signatures = []
        for queue, part in self._routed(todo):
            for start in range(0, len(part), self.chunk_size):
                keys = [f.key for f in part[start : start + self.chunk_size]]
                sig = self.app.signature(TASK_NAME, args=(batch_id, keys, versions))
                signatures.append(sig.set(queue=queue) if queue else sig)
        summary: dict[str, Any] = {"tasks": len(signatures), "frames": len(todo), "workers": {}}
        if not signatures:
            return summary
        sent = group(signatures).apply_async()
        try:
            results = self._wait(sent, services, batch_id, versions, len(frames) - len(todo))
        except BaseException:
            sent.revoke()  # nobody should detect for a batch that gave up
            raise
        summary["failed"] = []
        for r in results:
            summary["workers"][r["worker"]] = summary["workers"].get(r["worker"], 0) + r["detected"]
            summary["failed"].extend(r["failed"])  # the in-process pass reports them by name
        log.info("batch %s: %d frames detected by workers %s", batch_id, len(todo), summary)
        return summary

    def _wait(
        self,
        sent: Any,
        services: Services,
        batch_id: str,
        versions: dict[str, str],
        done_before: int,
    ) -> list[dict[str, Any]]:
        """The tasks' answers. Gives up with a clear DetectorError when no frame has been
        detected for ``stall_s`` (no worker consumes the queue, or all are stuck) or after
        ``timeout_s``, instead of waiting silently."""
        from celery.exceptions import TimeoutError as ResultTimeout

        started = last_change = time.monotonic()
        last_done = done_before
        broker = self.app.connection().as_uri()  # password masked
        while True:
            try:
                answers: list[dict[str, Any]] = sent.get(timeout=self.poll_s)
                return answers
            except ResultTimeout:
                pass
            except XunjianError:
                raise
            except Exception as exc:  # a task that failed on its worker, re-raised here
                raise DetectorError(f"batch {batch_id}: a worker failed: {exc}") from exc
            now = time.monotonic()
            done = services.detections.frames_done(batch_id, versions)
            if done != last_done:
                last_done, last_change = done, now
            if now - last_change > self.stall_s or now - started > self.timeout_s:
                waited = now - last_change
                raise DetectorError(
                    f"batch {batch_id}: no frame detected for {waited:.0f} s "
                    f"({done - done_before} sent frames done): is a `xunjian worker` consuming "
                    f"queue {self.app.conf.task_default_queue!r} on {broker}?"
                )

    def _routed(self, frames: Sequence[Frame]) -> list[tuple[str | None, list[Frame]]]:
        if not self.large_queue or not self.large_pixels:
            return [(None, list(frames))]
        large = [f for f in frames if f.width * f.height > self.large_pixels]
        small = [f for f in frames if f.width * f.height <= self.large_pixels]
        return [(None, small), (self.large_queue, large)]
