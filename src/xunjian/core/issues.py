"""Issues: one record per real problem at a place (or per event), and its lifecycle.

An :class:`Issue` is what fusion makes of many observations of one problem (specs/cases.md):
a fused location with its σ, a confidence, the best evidence observation, and every
observation kept. Its :class:`IssueStatus` moves only along :data:`TRANSITIONS`::

    candidate ──▶ published ──▶ dispatched ──▶ in_progress ──▶ closed ──▶ verified_fixed
        │             │  └──────────┴──────────────▲  │            │            │
        │             └───────────────────────────────┘            └──▶ recurred ◀┘
        └──▶ rejected ◀── (from any state before verified_fixed / recurred)

``recurred`` and ``rejected`` are final: a problem found again after closing opens a new
issue (a new case linked to the old one). ``verified_fixed`` can still become ``recurred``
when a later flight finds the problem back.

Observations are identified by :func:`observation_key` — (batch, frame, detector, model
version, class, box) — the key every stage is idempotent on.

May import: the standard library and ``xunjian.core`` / ``xunjian.errors`` only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from xunjian.core.records import Observation
from xunjian.errors import IssueTransitionError

BOX_DECIMALS = 2
"""Boxes are compared (and stored) rounded to 1/100 px: re-runs reproduce them exactly."""


class IssueStatus(StrEnum):
    """Where an issue stands in the closed loop (specs/cases.md)."""

    CANDIDATE = "candidate"
    PUBLISHED = "published"
    DISPATCHED = "dispatched"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"
    VERIFIED_FIXED = "verified_fixed"
    RECURRED = "recurred"
    REJECTED = "rejected"


_S = IssueStatus
TRANSITIONS: dict[IssueStatus, frozenset[IssueStatus]] = {
    _S.CANDIDATE: frozenset({_S.PUBLISHED, _S.REJECTED}),
    _S.PUBLISHED: frozenset({_S.DISPATCHED, _S.IN_PROGRESS, _S.CLOSED, _S.REJECTED}),
    _S.DISPATCHED: frozenset({_S.IN_PROGRESS, _S.CLOSED, _S.REJECTED}),
    _S.IN_PROGRESS: frozenset({_S.CLOSED, _S.REJECTED}),
    _S.CLOSED: frozenset({_S.VERIFIED_FIXED, _S.RECURRED, _S.REJECTED}),
    _S.VERIFIED_FIXED: frozenset({_S.RECURRED}),
    _S.RECURRED: frozenset(),
    _S.REJECTED: frozenset(),
}
"""The allowed moves; staying in the same status is always allowed (a no-op)."""

OPEN_STATUSES: frozenset[IssueStatus] = frozenset(
    {_S.CANDIDATE, _S.PUBLISHED, _S.DISPATCHED, _S.IN_PROGRESS}
)
"""Statuses in which a new sighting updates the issue instead of opening another."""


def can_transition(current: IssueStatus | str, target: IssueStatus | str) -> bool:
    """True when an issue in ``current`` may move to ``target`` (or stays where it is)."""
    a, b = IssueStatus(current), IssueStatus(target)
    return a is b or b in TRANSITIONS[a]


def check_transition(current: IssueStatus | str, target: IssueStatus | str) -> IssueStatus:
    """``target`` as an :class:`IssueStatus`; :class:`IssueTransitionError` if not allowed."""
    a, b = IssueStatus(current), IssueStatus(target)
    if not can_transition(a, b):
        allowed = ", ".join(sorted(TRANSITIONS[a])) or "nothing (final)"
        raise IssueTransitionError(f"expected a move from {a} to one of {allowed}, got {b}")
    return b


ObservationKey = tuple[str, str, str, str, str, tuple[float, float, float, float]]


def rounded_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """``box`` rounded to :data:`BOX_DECIMALS`, as keys and the database hold it."""
    x1, y1, x2, y2 = (round(float(v), BOX_DECIMALS) for v in box)
    return (x1, y1, x2, y2)


def observation_key(obs: Observation) -> ObservationKey:
    """(batch, frame, detector, model version, class, box): what makes an observation unique.

    The class is part of it because one model may put two classes on the same box.
    """
    d = obs.detection
    return (
        obs.batch_id,
        obs.frame_key,
        d.detector,
        d.model_version,
        d.class_name,
        rounded_box(d.bbox_xyxy),
    )


def issue_id_for(class_name: str, seed: Observation) -> str:
    """A stable issue id from its class and the observation that started it.

    Deterministic, so fusing the same batch twice names its issues the same way.
    """
    text = "|".join([class_name, *map(str, observation_key(seed))])
    return "iss_" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class Issue:
    """One real problem at a place — or one event (a spoil truck at a time and place).

    ``lat``/``lon`` is the fused location and ``sigma_m`` its one-σ horizontal error;
    ``confidence`` the issue's confidence (see ``core.fusion``); ``evidence`` the observation
    whose frame and box best show the problem. ``observations`` holds every observation
    when loaded (it may be empty when a store lists issues without them);
    ``observation_count`` is always the true count. ``not_reobserved`` counts later batches
    that covered the place well and did not see it again while the issue was open.
    """

    id: str
    class_name: str
    detector: str
    lat: float
    lon: float
    sigma_m: float
    confidence: float
    evidence: Observation
    observations: tuple[Observation, ...] = ()
    observation_count: int = 0
    status: IssueStatus = IssueStatus.CANDIDATE
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    batch_ids: tuple[str, ...] = ()
    is_event: bool = False
    not_reobserved: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def last_batch_id(self) -> str | None:
        return self.batch_ids[-1] if self.batch_ids else None

    def with_status(self, status: IssueStatus | str) -> Issue:
        """This issue moved to ``status``; :class:`IssueTransitionError` if not allowed."""
        return replace(self, status=check_transition(self.status, status))
