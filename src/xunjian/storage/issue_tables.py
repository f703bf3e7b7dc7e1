"""The issue tables: issues, the observations they are made of, and verification decisions.

Declared on the one ``Base`` of ``storage.tables`` (same naming convention, ``UTCDateTime``,
``JSONDocument``) and created by the Alembic revision ``0002``. Importing this module
registers the tables on ``Base.metadata``.

* ``issues``: one row per issue (``core.issues.Issue`` without its observations);
  ``evidence_observation_id`` names the evidence row of ``issue_observations`` (no foreign
  key: the two tables would reference each other).
* ``issue_observations``: every observation, unique on (batch, frame, detector, model
  version, class, box) — the key that keeps a re-run of a batch from duplicating anything. The box
  is stored rounded (``core.issues.BOX_DECIMALS``) in ``box_key`` text for the constraint.
  ``batch_id`` is not a foreign key to ``batches``: issues outlive the batches they came from.
* ``issue_verifications``: one decision per (issue, later batch), with its reasons.
* ``issue_events``: the history of each issue (created, observed, status, feedback, case).
* ``issue_feedback``: what reviewers and the case platform said of an issue (training data).

:func:`issue_values` / :func:`issue_from_row` and :func:`observation_values` /
:func:`observation_from_row` map the core records to and from the rows.

This module may import SQLAlchemy, ``storage.tables`` and ``xunjian.core`` only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from xunjian.core.feedback import EventKind, FeedbackKind, FeedbackSource
from xunjian.core.issues import BOX_DECIMALS, Issue, IssueStatus, rounded_box
from xunjian.core.records import Detection, Observation
from xunjian.core.verify import Outcome
from xunjian.storage.tables import Base, JSONDocument, UTCDateTime

ISSUE_STATUSES: tuple[str, ...] = tuple(s.value for s in IssueStatus)
OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class IssueRow(Base):
    """One issue: a real problem at a place, or an event."""

    __tablename__ = "issues"
    __table_args__ = (
        CheckConstraint(_in("status", ISSUE_STATUSES), name="status"),
        Index(None, "lat", "lon"),
        Index(None, "class_name"),
        Index(None, "status"),
        # serves the one order every listing uses (newest first, id breaks ties), read backwards
        Index(None, "last_seen", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    class_name: Mapped[str] = mapped_column(String(64))
    detector: Mapped[str] = mapped_column(String(64))
    is_event: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    sigma_m: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    observation_count: Mapped[int] = mapped_column(Integer)
    not_reobserved: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime())
    batch_ids: Mapped[list[str]] = mapped_column(JSONDocument)
    evidence_observation_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IssueObservationRow(Base):
    """One observation (a georeferenced detection) and the issue it belongs to."""

    __tablename__ = "issue_observations"
    __table_args__ = (
        # Named explicitly: the conventional name would exceed PostgreSQL's 63 characters.
        UniqueConstraint(
            "batch_id",
            "frame_key",
            "detector",
            "model_version",
            "class_name",
            "box_key",
            name="uq_issue_observations_key",
        ),
        Index(None, "issue_id"),
        Index(None, "batch_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issue_id: Mapped[str] = mapped_column(String(64), ForeignKey("issues.id", ondelete="CASCADE"))
    batch_id: Mapped[str] = mapped_column(String(128))
    frame_key: Mapped[str] = mapped_column(Text)
    detector: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(128))
    box_key: Mapped[str] = mapped_column(String(128))
    class_name: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    sigma_m: Mapped[float] = mapped_column(Float)
    range_m: Mapped[float] = mapped_column(Float)
    gsd_m: Mapped[float] = mapped_column(Float)
    captured_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IssueVerificationRow(Base):
    """What one later batch said about one issue (``core.verify.VerificationDecision``)."""

    __tablename__ = "issue_verifications"
    __table_args__ = (
        UniqueConstraint("issue_id", "batch_id"),
        CheckConstraint(_in("outcome", OUTCOMES), name="outcome"),
        Index(None, "batch_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issue_id: Mapped[str] = mapped_column(String(64), ForeignKey("issues.id", ondelete="CASCADE"))
    batch_id: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(32))
    good_views: Mapped[int] = mapped_column(Integer)
    views_checked: Mapped[int] = mapped_column(Integer)
    matched_frames: Mapped[list[str]] = mapped_column(JSONDocument)
    reasons: Mapped[list[str]] = mapped_column(JSONDocument)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())


FEEDBACK_KINDS: tuple[str, ...] = tuple(k.value for k in FeedbackKind)
FEEDBACK_SOURCES: tuple[str, ...] = tuple(k.value for k in FeedbackSource)
EVENT_KINDS: tuple[str, ...] = tuple(k.value for k in EventKind)


class IssueEventRow(Base):
    """One line of an issue's history (``core.feedback.IssueEvent``)."""

    __tablename__ = "issue_events"
    __table_args__ = (
        CheckConstraint(_in("kind", EVENT_KINDS), name="kind"),
        Index(None, "issue_id", "id"),
        Index(None, "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issue_id: Mapped[str] = mapped_column(String(64), ForeignKey("issues.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class IssueFeedbackRow(Base):
    """One judgement of an issue by a reviewer or the case platform (``core.feedback``)."""

    __tablename__ = "issue_feedback"
    __table_args__ = (
        CheckConstraint(_in("kind", FEEDBACK_KINDS), name="kind"),
        CheckConstraint(_in("source", FEEDBACK_SOURCES), name="source"),
        Index(None, "issue_id"),
        Index(None, "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issue_id: Mapped[str] = mapped_column(String(64), ForeignKey("issues.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text)
    class_name: Mapped[str | None] = mapped_column(String(64))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


ISSUES = cast(Table, IssueRow.__table__)
ISSUE_OBSERVATIONS = cast(Table, IssueObservationRow.__table__)
ISSUE_VERIFICATIONS = cast(Table, IssueVerificationRow.__table__)
ISSUE_EVENTS = cast(Table, IssueEventRow.__table__)
ISSUE_FEEDBACK = cast(Table, IssueFeedbackRow.__table__)


def box_key(box: tuple[float, float, float, float]) -> str:
    """The rounded box as text, the last part of the observation key."""
    return ",".join(f"{v:.{BOX_DECIMALS}f}" for v in rounded_box(box))


def observation_values(obs: Observation, issue_id: str) -> dict[str, Any]:
    """The ``issue_observations`` column values of ``obs`` (without id)."""
    d = obs.detection
    x1, y1, x2, y2 = rounded_box(d.bbox_xyxy)
    return {
        "issue_id": issue_id,
        "batch_id": obs.batch_id,
        "frame_key": obs.frame_key,
        "detector": d.detector,
        "model_version": d.model_version,
        "box_key": box_key(d.bbox_xyxy),
        "class_name": d.class_name,
        "confidence": d.confidence,
        "x1": x1,
        "y1": y1,
        "x2": x2,
        "y2": y2,
        "lat": obs.lat,
        "lon": obs.lon,
        "sigma_m": obs.sigma_m,
        "range_m": obs.range_m,
        "gsd_m": obs.gsd_m,
        "captured_at": obs.captured_at,
    }


def observation_from_row(row: Row[Any]) -> Observation:
    det = Detection(
        row.detector,
        row.class_name,
        row.confidence,
        (row.x1, row.y1, row.x2, row.y2),
        row.model_version,
        row.frame_key,
    )
    return Observation(
        det,
        row.batch_id,
        row.frame_key,
        row.lat,
        row.lon,
        row.sigma_m,
        row.range_m,
        row.gsd_m,
        row.captured_at,
    )


def issue_values(issue: Issue) -> dict[str, Any]:
    """The ``issues`` column values of ``issue`` (without evidence id and timestamps)."""
    return {
        "id": issue.id,
        "class_name": issue.class_name,
        "detector": issue.detector,
        "is_event": issue.is_event,
        "status": IssueStatus(issue.status).value,
        "lat": issue.lat,
        "lon": issue.lon,
        "sigma_m": issue.sigma_m,
        "confidence": issue.confidence,
        "observation_count": issue.observation_count,
        "not_reobserved": issue.not_reobserved,
        "first_seen": issue.first_seen,
        "last_seen": issue.last_seen,
        "batch_ids": list(issue.batch_ids),
    }


def issue_from_row(
    row: Row[Any], evidence: Observation, observations: tuple[Observation, ...] = ()
) -> Issue:
    return Issue(
        id=row.id,
        class_name=row.class_name,
        detector=row.detector,
        lat=row.lat,
        lon=row.lon,
        sigma_m=row.sigma_m,
        confidence=row.confidence,
        evidence=evidence,
        observations=observations,
        observation_count=row.observation_count,
        status=IssueStatus(row.status),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        batch_ids=tuple(row.batch_ids),
        is_event=row.is_event,
        not_reobserved=row.not_reobserved,
    )
