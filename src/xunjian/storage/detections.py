"""The detect-stage ledger in the database: what each detector version found in each frame.

Detection is the expensive stage, so it is the one made resumable: :meth:`DetectionLedger.save`
writes, in one transaction, a ``frame_detections`` row per detector version that ran on a
frame and the boxes it found; :meth:`DetectionLedger.load_batch` returns them, so a re-run of
a batch — or a worker restarted after a crash — decodes and detects only the frames (and the
detectors) not done yet with the current model versions. A new model version is a new key:
its frames run again.

This module may import SQLAlchemy, ``xunjian.core``, ``xunjian.errors`` and ``storage``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Table, and_, delete, exc, func, or_, select

from xunjian.core.records import Detection
from xunjian.storage import db
from xunjian.storage.detection_tables import DETECTIONS, FRAME_DETECTIONS


@dataclass
class FrameLedger:
    """For one frame: the detectors already run at the wanted versions, and their boxes."""

    done: set[str] = field(default_factory=set)
    detections: list[Detection] = field(default_factory=list)


class DetectionLedger(db.Repository):
    """Detections per (batch, frame, detector, model version) in SQLite or PostgreSQL."""

    def __repr__(self) -> str:
        return f"DetectionLedger({db.mask_url(self.url)!r})"

    def load_batch(self, batch_id: str, versions: Mapping[str, str]) -> dict[str, FrameLedger]:
        """frame key → what the detectors ``versions`` (name → model version) already did."""
        if not versions:
            return {}
        wanted = _at_versions(FRAME_DETECTIONS, versions)
        found = _at_versions(DETECTIONS, versions)
        out: dict[str, FrameLedger] = {}
        doing = f"reading the detections of batch {batch_id!r}"
        with db.database_errors(self.url, doing), self.engine.connect() as conn:
            ran = select(FRAME_DETECTIONS.c.frame_key, FRAME_DETECTIONS.c.detector).where(
                FRAME_DETECTIONS.c.batch_id == batch_id, wanted
            )
            for r in conn.execute(ran):
                out.setdefault(r.frame_key, FrameLedger()).done.add(r.detector)
            boxes = (
                select(DETECTIONS)
                .where(DETECTIONS.c.batch_id == batch_id, found)
                .order_by(DETECTIONS.c.id)
            )
            for r in conn.execute(boxes):
                ledger = out.get(r.frame_key)
                if ledger is None or r.detector not in ledger.done:
                    continue  # boxes without their ledger row cannot exist; be safe anyway
                ledger.detections.append(
                    Detection(
                        r.detector,
                        r.class_name,
                        r.confidence,
                        (r.x1, r.y1, r.x2, r.y2),
                        r.model_version,
                        r.frame_key,
                    )
                )
        return out

    def frames_done(self, batch_id: str, versions: Mapping[str, str]) -> int:
        """How many frames of the batch every detector of ``versions`` has run on."""
        if not versions:
            return 0
        wanted = _at_versions(FRAME_DETECTIONS, versions)
        per_frame = (
            select(FRAME_DETECTIONS.c.frame_key)
            .where(FRAME_DETECTIONS.c.batch_id == batch_id, wanted)
            .group_by(FRAME_DETECTIONS.c.frame_key)
            .having(func.count() == len(versions))
            .subquery()
        )
        doing = f"counting the detected frames of batch {batch_id!r}"
        with db.database_errors(self.url, doing), self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(per_frame)).scalar_one())

    def save(
        self,
        batch_id: str,
        frame_key: str,
        versions: Mapping[str, str],
        detections: Sequence[Detection],
    ) -> bool:
        """Record that ``versions`` ran on the frame and found ``detections``; one transaction.

        Idempotent: detectors already recorded for the frame at that version are left as
        they are (their boxes too). Returns False when there was nothing new to record.
        """
        doing = f"recording the detections of {frame_key!r}"
        with db.database_errors(self.url, doing):
            try:
                return self._save(batch_id, frame_key, versions, detections)
            except exc.IntegrityError:
                # Another process (a re-delivered task, a resumed batch) recorded the same
                # frame between our check and our insert: its rows stand, ours rolled back.
                return False

    def _save(
        self,
        batch_id: str,
        frame_key: str,
        versions: Mapping[str, str],
        detections: Sequence[Detection],
    ) -> bool:
        now = self._clock()
        with self.engine.begin() as conn:
            already = {
                r.detector
                for r in conn.execute(
                    select(FRAME_DETECTIONS.c.detector).where(
                        FRAME_DETECTIONS.c.batch_id == batch_id,
                        FRAME_DETECTIONS.c.frame_key == frame_key,
                        or_(
                            *(
                                and_(
                                    FRAME_DETECTIONS.c.detector == n,
                                    FRAME_DETECTIONS.c.model_version == v,
                                )
                                for n, v in versions.items()
                            )
                        ),
                    )
                )
            }
            new = {n: v for n, v in versions.items() if n not in already}
            if not new:
                return False
            conn.execute(
                FRAME_DETECTIONS.insert(),
                [
                    {
                        "batch_id": batch_id,
                        "frame_key": frame_key,
                        "detector": n,
                        "model_version": v,
                        "detection_count": sum(1 for d in detections if d.detector == n),
                        "detected_at": now,
                    }
                    for n, v in new.items()
                ],
            )
            rows = [
                {
                    "batch_id": batch_id,
                    "frame_key": frame_key,
                    "detector": d.detector,
                    "model_version": d.model_version,
                    "class_name": d.class_name,
                    "confidence": float(d.confidence),
                    "x1": float(d.bbox_xyxy[0]),
                    "y1": float(d.bbox_xyxy[1]),
                    "x2": float(d.bbox_xyxy[2]),
                    "y2": float(d.bbox_xyxy[3]),
                }
                for d in detections
                if d.detector in new
            ]
            if rows:
                conn.execute(DETECTIONS.insert(), rows)
        return True

    def forget_batch(self, batch_id: str, detectors: Iterable[str] | None = None) -> None:
        """Drop the batch's ledger (of some detectors), so the next run detects again."""
        names = list(detectors) if detectors is not None else None
        doing = f"forgetting the detections of batch {batch_id!r}"
        with db.database_errors(self.url, doing), self.engine.begin() as conn:
            for table in (DETECTIONS, FRAME_DETECTIONS):
                query = delete(table).where(table.c.batch_id == batch_id)
                if names is not None:
                    query = query.where(table.c.detector.in_(names))
                conn.execute(query)


def _at_versions(table: Table, versions: Mapping[str, str]) -> ColumnElement[bool]:
    """Rows of ``table`` written by any of the detectors ``versions`` (name → model version)."""
    return or_(*(and_(table.c.detector == n, table.c.model_version == v)
                 for n, v in versions.items()))  # fmt: skip
