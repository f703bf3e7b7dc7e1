"""What one service instance holds: settings, the open services, keys, processing, metrics.

Built by :func:`xunjian.service.app.create_app` and kept on ``app.state.xunjian``; routes
reach it through the dependencies in :mod:`xunjian.service.deps`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xunjian.inspect.pipeline import Services
from xunjian.service.metrics import ServiceMetrics
from xunjian.service.processing import BatchProcessor, ProgressBoard, Runner
from xunjian.settings import Settings
from xunjian.storage.apikeys import KeyStore

if TYPE_CHECKING:
    from xunjian.cases.loop import CaseLoop
    from xunjian.core.areas import AreaMap

log = logging.getLogger(__name__)


@dataclass
class ServiceState:
    settings: Settings
    services: Services
    keys: KeyStore
    board: ProgressBoard
    processor: BatchProcessor
    runner: Runner
    metrics: ServiceMetrics
    owns_services: bool = False
    case_loop: CaseLoop | None = None
    areas: AreaMap | None = None  # settings.areas_file, read once at start
    closed: bool = field(default=False, init=False)

    def enqueue(self, batch_id: str) -> bool:
        """Queue the batch for processing; False when it is already queued or running."""
        current = self.board.get(batch_id)
        if current is not None and not current.finished:
            return False
        self.board.reset(batch_id)
        if not self.runner.submit(batch_id):
            return False
        log.info("batch %s queued", batch_id)
        return True

    def resume_unfinished(self) -> list[str]:
        """Queues every batch left ``processing`` (a service killed mid-batch); returns them.

        Processing is idempotent and the detection ledger keeps what was detected, so the
        batch goes on where it stopped and ends with the issues an undisturbed run gives.
        """
        resumed = [
            b.batch_id
            for b in self.services.catalog.batches()
            if b.status == "processing" and self.enqueue(b.batch_id)
        ]
        if resumed:
            log.warning("resuming batches left unfinished: %s", ", ".join(resumed))
        return resumed

    def close(self) -> None:
        """Stops the runner (running batches finish) and closes what this instance opened."""
        if self.closed:
            return
        self.closed = True
        self.runner.close()
        if self.case_loop is not None:
            self.case_loop.close()
        self.keys.close()
        if self.owns_services:
            self.services.close()
