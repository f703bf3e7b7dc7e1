"""The issue store: issues, their observations and verification decisions in the database.

:meth:`IssueStore.record_batch` fuses a batch's observations (``core.fusion``) with the open
issues around them and writes the result in one transaction. It is idempotent on the
observation key (batch, frame, detector, model version, class, box): observations already stored
are skipped, so re-running a batch never duplicates an observation or an issue. Fusion reads
then writes, so writers are serialised (a PostgreSQL advisory lock, an ``IMMEDIATE`` SQLite
transaction) — two workers fusing neighbouring batches cannot both open the same issue.

:meth:`IssueStore.record_verifications` stores ``core.verify`` decisions, one per (issue,
batch), and applies each exactly once. Queries filter by bbox, class, status, batch and time;
:meth:`IssueStore.issues_geojson` exports a GeoJSON FeatureCollection.

Every change is written to the issue's history (``issue_events``) in the same transaction,
and handed to the store's *listeners* (:meth:`IssueStore.add_listener`) inside that
transaction too: the case loop's outbox enqueues its messages there, so an issue change and
the message it causes commit together or not at all (the transactional outbox). A listener
may move the issue with :func:`apply_status` on the connection it is given; that does not call
the listeners again.

Feedback (:meth:`IssueStore.add_feedback`) is kept for the ML loop; a false positive rejects the
issue, a wrong class or place corrects it.

This module may import SQLAlchemy, ``xunjian.core``, ``xunjian.errors`` and ``storage``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, Select, insert, select, update

from xunjian.core.feedback import EventKind, Feedback, FeedbackKind, FeedbackSource, IssueEvent
from xunjian.core.fusion import FusionParams, fuse_batch
from xunjian.core.issues import (
    OPEN_STATUSES,
    Issue,
    IssueStatus,
    can_transition,
    check_transition,
    observation_key,
)
from xunjian.core.records import Observation
from xunjian.core.taxonomy import class_info
from xunjian.core.verify import Outcome, VerificationDecision, apply_decision
from xunjian.errors import InputError
from xunjian.storage import db
from xunjian.storage.catalog import validate_batch_id
from xunjian.storage.issue_tables import (
    ISSUE_EVENTS,
    ISSUE_FEEDBACK,
    ISSUE_OBSERVATIONS,
    ISSUE_VERIFICATIONS,
    ISSUES,
    box_key,
    issue_from_row,
    issue_values,
    observation_from_row,
    observation_values,
)

_PG_FUSION_LOCK = 0x78756E6A6973  # any constant shared by every writer
_SQLITE_BEGIN_OPTION = "xunjian_sqlite_begin"
_CHUNK = 500
BBox = tuple[float, float, float, float]
"""(min lon, min lat, max lon, max lat), the GeoJSON order."""
_SEARCH_MARGIN_DEG = 0.002  # ≈ 200 m: wider than any gate between a cluster and its issue


@dataclass(frozen=True)
class BatchFusion:
    """What :meth:`IssueStore.record_batch` did."""

    batch_id: str
    new: tuple[str, ...]
    updated: tuple[str, ...]
    observations_added: int
    observations_skipped: int


@dataclass(frozen=True)
class IssueChange:
    """One change to an issue, as listeners see it inside the write transaction.

    ``issue`` is the issue after the change (without observations); ``before`` its status
    before (None: the issue is new); ``cause`` what changed it; ``batch_id`` the batch that
    did, for fusion and verification.
    """

    issue: Issue
    before: IssueStatus | None
    cause: EventKind
    source: str
    batch_id: str | None = None


IssueListener = Callable[[Connection, IssueChange], None]
"""Called inside the write transaction of every change; raising rolls the change back."""


class IssueStore(db.Repository):
    """Issues in a SQLite or PostgreSQL database (the schema of ``storage.issue_tables``)."""

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        clock: Callable[[], datetime] | None = None,
        params: FusionParams = FusionParams(),
        engine: Engine | None = None,
    ) -> None:
        super().__init__(url, migrate=migrate, clock=clock, engine=engine)
        self.params = params
        self._listeners: list[IssueListener] = []

    def add_listener(self, listener: IssueListener) -> None:
        """Call ``listener`` with every issue change, inside its transaction."""
        self._listeners.append(listener)

    def _notify(self, conn: Connection, change: IssueChange) -> None:
        for listener in self._listeners:
            listener(conn, change)

    def now(self) -> datetime:
        """The store's clock (injected in tests)."""
        return self._clock()

    def __repr__(self) -> str:
        return f"IssueStore({db.mask_url(self.url)!r})"

    @contextmanager
    def _writing(self, doing: str) -> Iterator[Connection]:
        """One serialised write transaction (fusion reads, then writes)."""
        with db.database_errors(self.url, doing), self.engine.connect() as conn:
            if self.engine.dialect.name == "sqlite":
                conn.execution_options(**{_SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            with conn.begin():
                if self.engine.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_FUSION_LOCK})")
                yield conn

    @contextmanager
    def _reading(self, doing: str) -> Iterator[Connection]:
        with db.database_errors(self.url, doing), self.engine.connect() as conn:
            yield conn

    # -- fusion ----------------------------------------------------------------------------

    def record_batch(self, batch_id: str, observations: Sequence[Observation]) -> BatchFusion:
        """Fuse the batch's observations into the stored issues; idempotent per observation."""
        validate_batch_id(batch_id)
        for o in observations:
            if o.batch_id != batch_id:
                raise InputError(
                    f"expected observations of batch {batch_id!r}, got one of {o.batch_id!r}",
                    source=o.frame_key,
                )
            class_info(o.class_name)
        now = self._clock()
        with self._writing(f"fusing batch {batch_id!r}") as conn:
            stored = {
                (batch_id, r.frame_key, r.detector, r.model_version, r.class_name, r.box_key)
                for r in conn.execute(
                    select(
                        ISSUE_OBSERVATIONS.c.frame_key,
                        ISSUE_OBSERVATIONS.c.detector,
                        ISSUE_OBSERVATIONS.c.model_version,
                        ISSUE_OBSERVATIONS.c.class_name,
                        ISSUE_OBSERVATIONS.c.box_key,
                    ).where(ISSUE_OBSERVATIONS.c.batch_id == batch_id)
                )
            }
            fresh = [o for o in observations if _db_key(o) not in stored]
            if not fresh:
                return BatchFusion(batch_id, (), (), 0, len(observations))
            lats, lons = [o.lat for o in fresh], [o.lon for o in fresh]
            m = _SEARCH_MARGIN_DEG
            area = (min(lons) - m, min(lats) - m, max(lons) + m, max(lats) + m)
            query = _filtered(
                select(ISSUES),
                bbox=area,
                class_name=sorted({o.class_name for o in fresh}),
                status=sorted(s.value for s in OPEN_STATUSES),
            )
            open_issues = _load(conn, list(conn.execute(query)), with_observations=True)
            result = fuse_batch(fresh, open_issues, self.params)
            old = {i.id: i for i in open_issues}
            for issue in result.new:
                conn.execute(
                    ISSUES.insert().values(**issue_values(issue), created_at=now, updated_at=now)
                )
                write_event(
                    conn,
                    IssueEvent(
                        issue.id,
                        EventKind.CREATED,
                        now,
                        "fusion",
                        to_status=IssueStatus(issue.status).value,
                        data={"batch_id": batch_id, "observations": len(issue.observations)},
                    ),
                )
            for issue in result.updated:
                conn.execute(
                    update(ISSUES)
                    .where(ISSUES.c.id == issue.id)
                    .values(**issue_values(issue), updated_at=now)
                )
            added = 0
            for issue in (*result.new, *result.updated):
                held = (
                    {observation_key(o) for o in old[issue.id].observations}
                    if (issue.id in old)
                    else set()
                )
                rows = [
                    observation_values(o, issue.id)
                    for o in issue.observations
                    if observation_key(o) not in held
                ]
                if rows:
                    conn.execute(ISSUE_OBSERVATIONS.insert(), rows)
                    added += len(rows)
                conn.execute(
                    update(ISSUES)
                    .where(ISSUES.c.id == issue.id)
                    .values(evidence_observation_id=_observation_id(conn, issue.evidence))
                )
                if issue.id in old:
                    write_event(
                        conn,
                        IssueEvent(
                            issue.id,
                            EventKind.OBSERVED,
                            now,
                            "fusion",
                            data={"batch_id": batch_id, "observations": len(rows)},
                        ),
                    )
            for issue in result.new:
                self._notify(
                    conn, IssueChange(_bare(issue), None, EventKind.CREATED, "fusion", batch_id)
                )
            for issue in result.updated:
                before = IssueStatus(old[issue.id].status)
                change = IssueChange(_bare(issue), before, EventKind.OBSERVED, "fusion", batch_id)
                self._notify(conn, change)
        return BatchFusion(
            batch_id,
            tuple(i.id for i in result.new),
            tuple(i.id for i in result.updated),
            added,
            len(observations) - len(fresh),
        )

    # -- queries ---------------------------------------------------------------------------

    def issue(self, issue_id: str, *, with_observations: bool = True) -> Issue | None:
        """One issue (with all its observations by default), or None."""
        with self._reading(f"reading issue {issue_id!r}") as conn:
            rows = list(conn.execute(select(ISSUES).where(ISSUES.c.id == issue_id)))
            found = _load(conn, rows, with_observations=with_observations)
        return found[0] if found else None

    def issues(
        self,
        *,
        bbox: BBox | None = None,
        class_name: str | Sequence[str] | None = None,
        status: str | Sequence[str] | None = None,
        batch_id: str | None = None,
        seen_since: datetime | None = None,
        seen_until: datetime | None = None,
        min_confidence: float | None = None,
        with_observations: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Issue]:
        """Issues matching every filter given, most recently seen first.

        ``bbox`` is (min lon, min lat, max lon, max lat); ``batch_id`` selects the issues
        that batch observed; ``seen_since`` / ``seen_until`` bound last and first sighting;
        ``min_confidence`` the issue confidence. ``limit`` / ``offset`` page through them
        (the order is stable: last seen, then id, both descending; an index read backwards
        serves it).
        """
        query = _filtered(
            select(ISSUES),
            bbox=bbox,
            class_name=class_name,
            status=status,
            batch_id=batch_id,
            seen_since=seen_since,
            seen_until=seen_until,
            min_confidence=min_confidence,
        ).order_by(ISSUES.c.last_seen.desc(), ISSUES.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        if offset:
            if offset < 0:
                raise InputError(f"expected an offset ≥ 0, got {offset}", source="offset")
            query = query.offset(offset)
        with self._reading("listing issues") as conn:
            return _load(conn, list(conn.execute(query)), with_observations=with_observations)

    def issues_geojson(self, **filters: Any) -> dict[str, Any]:
        """The issues matching ``filters`` (as :meth:`issues`) as a GeoJSON FeatureCollection."""
        filters.pop("with_observations", None)
        return {
            "type": "FeatureCollection",
            "features": [issue_feature(i) for i in self.issues(**filters)],
        }

    # -- lifecycle and verification --------------------------------------------------------

    def set_status(
        self,
        issue_id: str,
        status: IssueStatus | str,
        *,
        source: str = "operator",
        note: str = "",
        data: dict[str, Any] | None = None,
    ) -> Issue:
        """Move the issue to ``status`` through the lifecycle (IssueTransitionError if not).

        The move is written to the history with its ``source`` and ``note``; moving to the
        status it already has changes nothing and tells no listener.
        """
        with self._writing(f"setting the status of issue {issue_id!r}") as conn:
            before = self._locked_issue(conn, issue_id)
            issue = apply_status(
                conn, before, status, at=self._clock(), source=source, note=note, data=data
            )
            if issue.status is not before.status:
                self._notify(conn, IssueChange(issue, before.status, EventKind.STATUS, source))
        return issue

    def _locked_issue(self, conn: Connection, issue_id: str) -> Issue:
        rows = list(conn.execute(select(ISSUES).where(ISSUES.c.id == issue_id)))
        if not rows:
            raise InputError(f"no such issue: {issue_id!r}", source="issue id")
        return _load(conn, rows, with_observations=False)[0]

    def record_event(self, event: IssueEvent) -> None:
        """Add one line to an issue's history (e.g. a case-system message)."""
        with self._writing(f"recording an event of issue {event.issue_id!r}") as conn:
            self._locked_issue(conn, event.issue_id)
            write_event(conn, event)

    def history(self, issue_id: str) -> list[IssueEvent]:
        """The issue's history, oldest first (empty for an unknown issue)."""
        query = (
            select(ISSUE_EVENTS)
            .where(ISSUE_EVENTS.c.issue_id == issue_id)
            .order_by(ISSUE_EVENTS.c.id)
        )
        with self._reading(f"reading the history of issue {issue_id!r}") as conn:
            return [_event_from_row(r) for r in conn.execute(query)]

    # -- feedback --------------------------------------------------------------------------

    def add_feedback(self, feedback: Feedback) -> tuple[Feedback, Issue]:
        """Store one judgement of an issue and act on it, in one transaction.

        ``false_positive`` rejects the issue (when the lifecycle allows it — a verified or
        recurred issue keeps its status, the feedback is still kept); ``wrong_class`` moves
        the issue to the given class; ``wrong_place`` to the given place; ``confirm`` only
        records. Returns the stored feedback (with id) and the issue after it.
        """
        kind = FeedbackKind(feedback.kind)
        FeedbackSource(feedback.source)
        if kind is FeedbackKind.WRONG_CLASS:
            if not feedback.class_name:
                raise InputError("expected the right class for wrong_class", source="feedback")
            class_info(feedback.class_name)
        if kind is FeedbackKind.WRONG_PLACE:
            if feedback.lat is None or feedback.lon is None:
                raise InputError("expected lat and lon for wrong_place", source="feedback")
            if not (-90 <= feedback.lat <= 90 and -180 <= feedback.lon <= 180):
                raise InputError(
                    f"expected lat in [-90, 90] and lon in [-180, 180], "
                    f"got {feedback.lat}, {feedback.lon}",
                    source="feedback",
                )
        now = self._clock()
        with self._writing(f"recording feedback on issue {feedback.issue_id!r}") as conn:
            before = self._locked_issue(conn, feedback.issue_id)
            new_id = conn.execute(
                insert(ISSUE_FEEDBACK)
                .values(
                    issue_id=feedback.issue_id,
                    kind=kind.value,
                    source=FeedbackSource(feedback.source).value,
                    author=feedback.author,
                    note=feedback.note,
                    class_name=feedback.class_name,
                    lat=feedback.lat,
                    lon=feedback.lon,
                    created_at=now,
                )
                .returning(ISSUE_FEEDBACK.c.id)
            ).scalar_one()
            data: dict[str, Any] = {"feedback_id": new_id, "kind": kind.value}
            changes: dict[str, Any] = {}
            if kind is FeedbackKind.WRONG_CLASS and feedback.class_name != before.class_name:
                data["old_class"], changes["class_name"] = before.class_name, feedback.class_name
            if kind is FeedbackKind.WRONG_PLACE:
                data["old_place"] = [before.lat, before.lon]
                changes.update(lat=feedback.lat, lon=feedback.lon)
            if changes:
                conn.execute(
                    update(ISSUES).where(ISSUES.c.id == before.id).values(**changes, updated_at=now)
                )
            write_event(
                conn,
                IssueEvent(
                    before.id,
                    EventKind.FEEDBACK,
                    now,
                    FeedbackSource(feedback.source).value,
                    note=feedback.note,
                    data=data,
                ),
            )
            after = self._locked_issue(conn, before.id)
            if kind is FeedbackKind.FALSE_POSITIVE and can_transition(
                after.status, IssueStatus.REJECTED
            ):
                after = apply_status(
                    conn,
                    after,
                    IssueStatus.REJECTED,
                    at=now,
                    source=FeedbackSource(feedback.source).value,
                    note=feedback.note or "false positive",
                )
            self._notify(
                conn,
                IssueChange(
                    after, before.status, EventKind.FEEDBACK, FeedbackSource(feedback.source)
                ),
            )
        stored = Feedback(
            feedback.issue_id,
            kind,
            FeedbackSource(feedback.source),
            feedback.author,
            feedback.note,
            feedback.class_name,
            feedback.lat,
            feedback.lon,
            int(new_id),
            now,
        )
        return stored, after

    def feedback(
        self,
        *,
        issue_id: str | None = None,
        kind: FeedbackKind | str | Sequence[FeedbackKind | str] | None = None,
        since_id: int | None = None,
    ) -> list[Feedback]:
        """Stored feedback, oldest first; ``since_id`` returns only what came after it."""
        query = select(ISSUE_FEEDBACK).order_by(ISSUE_FEEDBACK.c.id)
        if issue_id is not None:
            query = query.where(ISSUE_FEEDBACK.c.issue_id == issue_id)
        if kind is not None:
            kinds = [kind] if isinstance(kind, str) else list(kind)
            query = query.where(ISSUE_FEEDBACK.c.kind.in_([FeedbackKind(k).value for k in kinds]))
        if since_id is not None:
            query = query.where(ISSUE_FEEDBACK.c.id > since_id)
        with self._reading("reading feedback") as conn:
            return [
                Feedback(
                    r.issue_id,
                    FeedbackKind(r.kind),
                    FeedbackSource(r.source),
                    r.author,
                    r.note,
                    r.class_name,
                    r.lat,
                    r.lon,
                    r.id,
                    r.created_at,
                )
                for r in conn.execute(query)
            ]

    def record_verifications(self, decisions: Sequence[VerificationDecision]) -> list[Issue]:
        """Store each decision and apply it to its issue — once per (issue, batch).

        Returns the issues whose status or not-re-observed count changed.
        """
        now = self._clock()
        changed: list[Issue] = []
        with self._writing("recording verification decisions") as conn:
            for d in decisions:
                exists = conn.execute(
                    select(ISSUE_VERIFICATIONS.c.id).where(
                        ISSUE_VERIFICATIONS.c.issue_id == d.issue_id,
                        ISSUE_VERIFICATIONS.c.batch_id == d.batch_id,
                    )
                ).first()
                if exists is not None:
                    continue
                rows = list(conn.execute(select(ISSUES).where(ISSUES.c.id == d.issue_id)))
                if not rows:
                    raise InputError(f"no such issue: {d.issue_id!r}", source="verification")
                before = _load(conn, rows, with_observations=False)[0]
                after = apply_decision(before, d)
                conn.execute(
                    ISSUE_VERIFICATIONS.insert().values(
                        issue_id=d.issue_id,
                        batch_id=d.batch_id,
                        outcome=d.outcome.value,
                        good_views=d.good_views,
                        views_checked=d.views_checked,
                        matched_frames=list(d.matched_frames),
                        reasons=list(d.reasons),
                        decided_at=now,
                    )
                )
                if after != before:
                    conn.execute(
                        update(ISSUES)
                        .where(ISSUES.c.id == d.issue_id)
                        .values(
                            status=IssueStatus(after.status).value,
                            not_reobserved=after.not_reobserved,
                            updated_at=now,
                        )
                    )
                    moved = after.status is not before.status
                    write_event(
                        conn,
                        IssueEvent(
                            d.issue_id,
                            EventKind.VERIFICATION,
                            now,
                            "verification",
                            from_status=before.status.value if moved else None,
                            to_status=IssueStatus(after.status).value if moved else None,
                            note="; ".join(d.reasons),
                            data={"batch_id": d.batch_id, "outcome": d.outcome.value},
                        ),
                    )
                    changed.append(after)
                    self._notify(
                        conn,
                        IssueChange(
                            after, before.status, EventKind.VERIFICATION, "verification", d.batch_id
                        ),
                    )
        return changed

    def verifications(
        self, *, issue_id: str | None = None, batch_id: str | None = None
    ) -> list[VerificationDecision]:
        """Stored decisions, oldest first, optionally of one issue and/or one batch."""
        query = select(ISSUE_VERIFICATIONS).order_by(ISSUE_VERIFICATIONS.c.id)
        if issue_id is not None:
            query = query.where(ISSUE_VERIFICATIONS.c.issue_id == issue_id)
        if batch_id is not None:
            query = query.where(ISSUE_VERIFICATIONS.c.batch_id == batch_id)
        with self._reading("reading verification decisions") as conn:
            return [
                VerificationDecision(
                    r.issue_id,
                    r.batch_id,
                    Outcome(r.outcome),
                    r.good_views,
                    r.views_checked,
                    tuple(r.matched_frames),
                    tuple(r.reasons),
                )
                for r in conn.execute(query)
            ]


def apply_status(
    conn: Connection,
    issue: Issue,
    status: IssueStatus | str,
    *,
    at: datetime,
    source: str,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> Issue:
    """Move ``issue`` to ``status`` on ``conn`` and write the move to its history.

    For use inside a write transaction (a listener's). Calls no listener. Moving to the
    status the issue already has writes nothing.
    """
    target = check_transition(issue.status, status)
    if target is issue.status:
        return issue
    conn.execute(
        update(ISSUES).where(ISSUES.c.id == issue.id).values(status=target.value, updated_at=at)
    )
    write_event(
        conn,
        IssueEvent(
            issue.id,
            EventKind.STATUS,
            at,
            source,
            from_status=issue.status.value,
            to_status=target.value,
            note=note,
            data=data or {},
        ),
    )
    return replace(issue, status=target)


def write_event(conn: Connection, event: IssueEvent) -> None:
    """Add ``event`` to its issue's history on ``conn`` (inside the caller's transaction)."""
    conn.execute(
        ISSUE_EVENTS.insert().values(
            issue_id=event.issue_id,
            kind=EventKind(event.kind).value,
            at=event.at,
            source=event.source,
            from_status=event.from_status,
            to_status=event.to_status,
            note=event.note,
            data=dict(event.data),
        )
    )


def _event_from_row(r: Row[Any]) -> IssueEvent:
    return IssueEvent(
        r.issue_id,
        EventKind(r.kind),
        r.at,
        r.source,
        r.from_status,
        r.to_status,
        r.note,
        dict(r.data),
        r.id,
    )


def _bare(issue: Issue) -> Issue:
    """``issue`` without its observation list (listeners get issues as queries return them)."""
    return replace(issue, observations=())


def _db_key(o: Observation) -> tuple[str, str, str, str, str, str]:
    d = o.detection
    return (
        o.batch_id,
        o.frame_key,
        d.detector,
        d.model_version,
        d.class_name,
        box_key(d.bbox_xyxy),
    )


def _observation_id(conn: Connection, o: Observation) -> int | None:
    batch, frame, detector, model, cls, _box = observation_key(o)
    row = conn.execute(
        select(ISSUE_OBSERVATIONS.c.id).where(
            ISSUE_OBSERVATIONS.c.batch_id == batch,
            ISSUE_OBSERVATIONS.c.frame_key == frame,
            ISSUE_OBSERVATIONS.c.detector == detector,
            ISSUE_OBSERVATIONS.c.model_version == model,
            ISSUE_OBSERVATIONS.c.class_name == cls,
            ISSUE_OBSERVATIONS.c.box_key == box_key(o.detection.bbox_xyxy),
        )
    ).first()
    return None if row is None else int(row.id)


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _filtered(
    query: Select[Any],
    *,
    bbox: BBox | None = None,
    class_name: str | Sequence[str] | None = None,
    status: str | Sequence[str] | None = None,
    batch_id: str | None = None,
    seen_since: datetime | None = None,
    seen_until: datetime | None = None,
    min_confidence: float | None = None,
) -> Select[Any]:
    if min_confidence is not None:
        if not 0.0 <= min_confidence <= 1.0:
            raise InputError(
                f"expected a confidence in [0, 1], got {min_confidence}", source="min_confidence"
            )
        query = query.where(ISSUES.c.confidence >= min_confidence)
    if bbox is not None:
        lon0, lat0, lon1, lat1 = bbox
        if not (lon0 <= lon1 and lat0 <= lat1):
            raise InputError(
                f"expected min ≤ max in (min lon, min lat, max lon, max lat), got {bbox}",
                source="bbox",
            )
        query = query.where(ISSUES.c.lon.between(lon0, lon1), ISSUES.c.lat.between(lat0, lat1))
    if class_name is not None:
        names = _as_list(class_name)
        for name in names:
            class_info(name)
        query = query.where(ISSUES.c.class_name.in_(names))
    if status is not None:
        query = query.where(ISSUES.c.status.in_([IssueStatus(s).value for s in _as_list(status)]))
    if batch_id is not None:
        seen_in = select(ISSUE_OBSERVATIONS.c.issue_id).where(
            ISSUE_OBSERVATIONS.c.batch_id == batch_id
        )
        query = query.where(ISSUES.c.id.in_(seen_in))
    if seen_since is not None:
        query = query.where(ISSUES.c.last_seen >= seen_since)
    if seen_until is not None:
        query = query.where(ISSUES.c.first_seen <= seen_until)
    return query


def _load(conn: Connection, rows: list[Row[Any]], *, with_observations: bool) -> list[Issue]:
    """Issues of ``rows`` with their evidence (and all observations when asked)."""
    by_issue: dict[str, list[Observation]] = {}
    by_id: dict[int, Observation] = {}
    ids = [r.id for r in rows]
    wanted = ids if with_observations else [r.evidence_observation_id for r in rows]
    column = ISSUE_OBSERVATIONS.c.issue_id if with_observations else ISSUE_OBSERVATIONS.c.id
    for start in range(0, len(wanted), _CHUNK):
        chunk = [w for w in wanted[start : start + _CHUNK] if w is not None]
        query = (
            select(ISSUE_OBSERVATIONS).where(column.in_(chunk)).order_by(ISSUE_OBSERVATIONS.c.id)
        )
        for r in conn.execute(query):
            o = observation_from_row(r)
            by_id[r.id] = o
            by_issue.setdefault(r.issue_id, []).append(o)
    out = []
    for r in rows:
        obs = tuple(by_issue.get(r.id, ())) if with_observations else ()
        evidence = by_id.get(r.evidence_observation_id) if r.evidence_observation_id else None
        if evidence is None:
            evidence = obs[0] if obs else _missing_evidence(conn, r.id)
        out.append(issue_from_row(r, evidence, obs))
    return out


def _missing_evidence(conn: Connection, issue_id: str) -> Observation:
    row = conn.execute(
        select(ISSUE_OBSERVATIONS).where(ISSUE_OBSERVATIONS.c.issue_id == issue_id).limit(1)
    ).one()
    return observation_from_row(row)


def issue_feature(issue: Issue) -> dict[str, Any]:
    """One issue as a GeoJSON Feature (a Point at the fused location)."""
    info = class_info(issue.class_name)
    ev = issue.evidence
    return {
        "type": "Feature",
        "id": issue.id,
        "geometry": {"type": "Point", "coordinates": [issue.lon, issue.lat]},
        "properties": {
            "id": issue.id,
            "class": issue.class_name,
            "class_zh": info.zh,
            "class_en": info.en,
            "detector": issue.detector,
            "is_event": issue.is_event,
            "status": IssueStatus(issue.status).value,
            "confidence": round(issue.confidence, 4),
            "sigma_m": round(issue.sigma_m, 3),
            "observation_count": issue.observation_count,
            "not_reobserved": issue.not_reobserved,
            "first_seen": issue.first_seen.isoformat() if issue.first_seen else None,
            "last_seen": issue.last_seen.isoformat() if issue.last_seen else None,
            "batch_ids": list(issue.batch_ids),
            "evidence": {
                "batch_id": ev.batch_id,
                "frame_key": ev.frame_key,
                "bbox": list(ev.detection.bbox_xyxy),
                "confidence": ev.confidence,
                "model_version": ev.detection.model_version,
            },
        },
    }
