"""Batch processing inside the service: a progress board, the processor, and runners.

The service runs uploaded batches in the same process by default: :class:`ThreadRunner` keeps
a queue and a few worker threads that call :class:`BatchProcessor`, which runs
:func:`xunjian.inspect.pipeline.process_batch` and reports progress to the
:class:`ProgressBoard` (what ``GET /batches/{id}`` and the event stream show). Tests inject
:class:`InlineRunner` (process on submit) or any object with the :class:`Runner` methods.

A batch is queued once: submitting a batch that is queued or running does nothing, so the API's
"complete" and the object store's notification of the same manifest start one run. Processing
is idempotent anyway (every stage is), so a batch submitted again after it finished re-runs
without duplicating anything.

May import the standard library, ``xunjian.inspect``, ``xunjian.models``, ``xunjian.storage``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from xunjian.errors import XunjianError

if TYPE_CHECKING:
    from xunjian.inspect.pipeline import BatchResult, Services
    from xunjian.models.detector import DetectorSet
    from xunjian.service.metrics import ServiceMetrics

log = logging.getLogger(__name__)

TERMINAL = frozenset({"processed", "failed"})


STAGE_STATES = {"ingest": "ingesting", "refine": "refining", "detect": "detecting"}
"""The progress state shown while a pipeline stage runs; the stages after detection (verify,
fuse, evidence, outputs) show as ``fusing``."""


@dataclass(frozen=True)
class BatchProgress:
    """Where one batch's processing stands, as the board knows it (in memory)."""

    batch_id: str
    state: str = "queued"  # queued → ingesting → refining → detecting → fusing → processed | failed
    ingest_done: int = 0
    ingest_total: int = 0
    detect_done: int = 0
    detect_total: int = 0
    current: str = ""
    error: str | None = None
    summary: dict[str, Any] | None = None
    queued_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    version: int = 0

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("version")
        return out


class ProgressBoard:
    """Thread-safe progress of every batch this process has seen since it started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: dict[str, BatchProgress] = {}

    def get(self, batch_id: str) -> BatchProgress | None:
        with self._lock:
            return self._batches.get(batch_id)

    def set(self, batch_id: str, **changes: Any) -> BatchProgress:
        with self._lock:
            old = self._batches.get(batch_id) or BatchProgress(batch_id)
            new = replace(old, **changes, version=old.version + 1)
            self._batches[batch_id] = new
            return new

    def reset(self, batch_id: str) -> BatchProgress:
        """A fresh ``queued`` entry (a batch submitted again)."""
        with self._lock:
            old = self._batches.get(batch_id)
            new = BatchProgress(batch_id, version=(old.version + 1) if old else 0)
            self._batches[batch_id] = new
            return new


class BatchProcessor:
    """Runs one batch through the pipeline and keeps the board and the metrics told."""

    def __init__(
        self,
        services: Services,
        board: ProgressBoard,
        metrics: ServiceMetrics,
        *,
        detectors: DetectorSet | Callable[[], DetectorSet] | None = None,
    ) -> None:
        self.services = services
        self.board = board
        self.metrics = metrics
        self._detectors = detectors

    def detectors(self) -> DetectorSet | None:
        """The set for the next batch: the injected one, or what the provider (the hot-reloading
        registry set in service) returns now; None lets process_batch load the shipped set."""
        if self._detectors is None or not callable(self._detectors):
            return self._detectors
        return self._detectors()

    def process(self, batch_id: str) -> None:
        from xunjian.inspect.pipeline import batch_summary, process_batch

        board, metrics = self.board, self.metrics
        started = time.perf_counter()
        stage_start = {"ingesting": started}

        def ingest(done: int, total: int, name: str) -> None:
            board.set(batch_id, state="ingesting", ingest_done=done, ingest_total=total,
                      current=name)  # fmt: skip

        def detect(done: int, total: int, name: str) -> None:
            if "detecting" not in stage_start:
                stage_start["detecting"] = time.perf_counter()
                metrics.stage_seconds.labels("ingest").observe(stage_start["detecting"] - started)
            board.set(batch_id, state="detecting", detect_done=done, detect_total=total,
                      current=name)  # fmt: skip

        def stage(name: str) -> None:
            state = STAGE_STATES.get(name, "fusing")
            now = board.get(batch_id)
            if now is None or now.state != state:
                board.set(batch_id, state=state, current="")

        board.set(batch_id, state="ingesting", error=None, summary=None, finished_at=None)
        try:
            result = process_batch(
                self.services,
                batch_id,
                detectors=self.detectors(),
                progress=ingest,
                detect_progress=detect,
                stage_progress=stage,
            )
        except Exception as exc:  # the worker thread must survive any batch
            reason = str(exc) if isinstance(exc, XunjianError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, XunjianError):
                log.exception("batch %s failed", batch_id)
            else:
                log.warning("batch %s failed: %s", batch_id, reason)
            self._mark_failed(batch_id)
            metrics.batches.labels("failed").inc()
            board.set(batch_id, state="failed", error=reason, finished_at=time.time())
            return
        end = time.perf_counter()
        if "detecting" in stage_start:
            metrics.stage_seconds.labels("detect_fuse_publish").observe(
                end - stage_start["detecting"]
            )
        metrics.stage_seconds.labels("batch").observe(end - started)
        self._count(result)
        board.set(
            batch_id,
            state="processed",
            current="",
            summary=batch_summary(result),
            finished_at=time.time(),
        )

    def _count(self, result: BatchResult) -> None:
        m = self.metrics
        m.frames_processed.inc(len(result.ingest.frames))
        m.frames_failed.inc(len(result.ingest.failures) + len(result.frame_errors))
        m.detections.inc(result.detections)
        if result.fusion is not None:
            m.issues_created.inc(len(result.fusion.new))
            m.issues_updated.inc(len(result.fusion.updated))
        m.batches.labels("processed").inc()

    def _mark_failed(self, batch_id: str) -> None:
        try:
            if self.services.catalog.batch(batch_id) is not None:
                self.services.catalog.set_batch_status(batch_id, "failed")
        except XunjianError as exc:
            log.warning("batch %s: cannot record the failure: %s", batch_id, exc)


class Runner(Protocol):
    """Where batches run. ``start`` is called once with the function that processes one."""

    def start(self, process: Callable[[str], None]) -> None: ...

    def submit(self, batch_id: str) -> bool:
        """Queue the batch; False when it is already queued or running."""
        ...

    def close(self) -> None: ...


class InlineRunner:
    """Processes a batch in the caller's thread when it is submitted (tests, scripts)."""

    def __init__(self) -> None:
        self._process: Callable[[str], None] | None = None
        self.submitted: list[str] = []

    def start(self, process: Callable[[str], None]) -> None:
        self._process = process

    def submit(self, batch_id: str) -> bool:
        self.submitted.append(batch_id)
        if self._process is not None:
            self._process(batch_id)
        return True

    def close(self) -> None:
        self._process = None


class ThreadRunner:
    """A queue and ``workers`` daemon threads, started on the first submit."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, workers)
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._process: Callable[[str], None] | None = None
        self._closed = False

    def start(self, process: Callable[[str], None]) -> None:
        self._process = process

    def submit(self, batch_id: str) -> bool:
        with self._lock:
            if self._closed:
                raise RuntimeError("the batch runner is closed")
            if batch_id in self._pending:
                return False
            self._pending.add(batch_id)
            if not self._threads:
                for n in range(self.workers):
                    thread = threading.Thread(
                        target=self._work, name=f"xunjian-batch-{n}", daemon=True
                    )
                    thread.start()
                    self._threads.append(thread)
        self._queue.put(batch_id)
        return True

    def _work(self) -> None:
        for batch_id in self._items():
            try:
                if self._process is not None:
                    self._process(batch_id)
            finally:
                with self._lock:
                    self._pending.discard(batch_id)

    def _items(self) -> Iterator[str]:
        while (item := self._queue.get()) is not None:
            yield item

    def close(self, timeout: float = 30.0) -> None:
        """Lets running batches finish (up to ``timeout`` s each) and stops the threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout)
