"""评价 evaluate: how the closed loop performs, per category and area, from issue histories.

:func:`evaluation_stats` reads the issues (optionally inside an area, and first seen since a
time) and their histories (``issue_events``: every status an issue reached, with its time)
and counts, per class and overall:

* ``found`` — issues; ``open`` — still candidate/published/dispatched/in progress;
* ``published`` — ever became a case (reached ``published`` or any later case status);
* ``closed`` — ever closed by the case system (``closed``, or verified/recurred after it);
* ``verified_fixed``, ``recurred``, ``rejected`` — ever reached that status;
* ``median_hours_to_close`` — median time from ``published`` to ``closed``;
* ``share_verified_within_days`` — of the closed issues, the share a later flight verified
  fixed within ``within_days`` of closing (None when nothing was closed);
  ``awaiting_verification`` — closed issues neither verified nor recurred yet.

With ``areas`` (the configured districts / grid cells, :mod:`xunjian.core.areas`) the same
figures come per area too (``by_area``, in the file's order; issues outside every area under
:data:`~xunjian.core.areas.OUTSIDE`), each with its own per-class split.

The service (``GET /api/v1/stats``, the map page) and ``xunjian cases stats`` call it; the
result is JSON-able.

May import: SQLAlchemy, ``xunjian.core``, ``xunjian.errors`` and ``xunjian.storage``.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from xunjian.core.areas import OUTSIDE, AreaMap
from xunjian.core.issues import OPEN_STATUSES, IssueStatus
from xunjian.core.taxonomy import BY_NAME
from xunjian.errors import InputError
from xunjian.storage import db
from xunjian.storage.issue_tables import ISSUE_EVENTS, ISSUES
from xunjian.storage.issues import IssueStore

_S = IssueStatus
CASE_STATUSES = {_S.PUBLISHED, _S.DISPATCHED, _S.IN_PROGRESS, _S.CLOSED}
CASE_STATUSES |= {_S.VERIFIED_FIXED, _S.RECURRED}
CLOSED_STATUSES = {_S.CLOSED, _S.VERIFIED_FIXED, _S.RECURRED}


@dataclass
class _Tally:
    found: int = 0
    open: int = 0
    published: int = 0
    closed: int = 0
    verified_fixed: int = 0
    recurred: int = 0
    rejected: int = 0
    awaiting_verification: int = 0
    hours_to_close: list[float] = field(default_factory=list)
    closed_with_time: int = 0
    verified_in_time: int = 0

    def as_dict(self) -> dict[str, Any]:
        share = self.verified_in_time / self.closed_with_time if self.closed_with_time else None
        median = statistics.median(self.hours_to_close) if self.hours_to_close else None
        return {
            "found": self.found,
            "open": self.open,
            "published": self.published,
            "closed": self.closed,
            "verified_fixed": self.verified_fixed,
            "recurred": self.recurred,
            "rejected": self.rejected,
            "awaiting_verification": self.awaiting_verification,
            "median_hours_to_close": None if median is None else round(median, 2),
            "share_verified_within_days": None if share is None else round(share, 4),
        }


def evaluation_stats(
    issues: IssueStore,
    *,
    within_days: int = 7,
    area: tuple[float, float, float, float] | None = None,
    since: datetime | None = None,
    areas: AreaMap | None = None,
) -> dict[str, Any]:
    """评价 figures per class and overall (and per area with ``areas``); ``area`` is a bbox
    filter, (min lon, min lat, max lon, max lat)."""
    if within_days < 0:
        raise InputError(f"expected within_days ≥ 0, got {within_days}", source="stats")
    query = select(ISSUES.c.id, ISSUES.c.class_name, ISSUES.c.status, ISSUES.c.lon, ISSUES.c.lat)
    if area is not None:
        lon0, lat0, lon1, lat1 = area
        if not (lon0 <= lon1 and lat0 <= lat1):
            raise InputError(
                f"expected min ≤ max in (min lon, min lat, max lon, max lat), got {area}",
                source="area",
            )
        query = query.where(ISSUES.c.lon.between(lon0, lon1), ISSUES.c.lat.between(lat0, lat1))
    if since is not None:
        query = query.where(func.coalesce(ISSUES.c.first_seen, ISSUES.c.created_at) >= since)
    events = (
        select(ISSUE_EVENTS.c.issue_id, ISSUE_EVENTS.c.to_status, ISSUE_EVENTS.c.at)
        .where(ISSUE_EVENTS.c.to_status.is_not(None))
        .where(ISSUE_EVENTS.c.issue_id.in_(query.with_only_columns(ISSUES.c.id)))
        .order_by(ISSUE_EVENTS.c.id)
    )
    engine = issues.engine
    with db.database_errors(engine.url, "computing 评价 statistics"), engine.connect() as conn:
        rows = list(conn.execute(query))
        reached: dict[str, dict[IssueStatus, datetime]] = defaultdict(dict)
        for e in conn.execute(events):
            reached[e.issue_id].setdefault(IssueStatus(e.to_status), e.at)
    overall = _Tally()
    by_class: defaultdict[str, _Tally] = defaultdict(_Tally)
    by_area: defaultdict[str, _Tally] = defaultdict(_Tally)
    by_area_class: defaultdict[tuple[str, str], _Tally] = defaultdict(_Tally)
    window = timedelta(days=within_days)
    located = (
        areas.locate_many([float(r.lon) for r in rows], [float(r.lat) for r in rows])
        if areas is not None
        else []
    )
    for n, row in enumerate(rows):
        status = IssueStatus(row.status)
        times = reached.get(row.id, {})
        seen = set(times) | {status}
        tallies = [overall, by_class[row.class_name]]
        if areas is not None:
            name = located[n]
            tallies += [by_area[name], by_area_class[name, row.class_name]]
        for tally in tallies:
            _count(tally, status, seen, times, window)
    out: dict[str, Any] = {
        "within_days": within_days,
        "area": list(area) if area else None,
        "since": since.isoformat() if since else None,
        "overall": overall.as_dict(),
        "by_class": _classes(by_class),
    }
    if areas is not None:
        order = [n for n in [*areas.names, OUTSIDE] if n in by_area]
        out["by_area"] = {
            name: {
                **by_area[name].as_dict(),
                "by_class": _classes({c: t for (a, c), t in by_area_class.items() if a == name}),
            }
            for name in order
        }
    return out


def _classes(tallies: dict[str, _Tally]) -> dict[str, Any]:
    return {
        name: {"zh": BY_NAME[name].zh, "en": BY_NAME[name].en, **tallies[name].as_dict()}
        for name in sorted(tallies)
    }


def _count(
    tally: _Tally,
    status: IssueStatus,
    seen: set[IssueStatus],
    times: dict[IssueStatus, datetime],
    window: timedelta,
) -> None:
    tally.found += 1
    tally.open += status in OPEN_STATUSES
    tally.published += bool(seen & CASE_STATUSES)
    closed = bool(seen & CLOSED_STATUSES)
    tally.closed += closed
    tally.verified_fixed += _S.VERIFIED_FIXED in seen
    tally.recurred += _S.RECURRED in seen
    tally.rejected += _S.REJECTED in seen
    tally.awaiting_verification += status is _S.CLOSED
    published_at, closed_at = times.get(_S.PUBLISHED), times.get(_S.CLOSED)
    if published_at and closed_at and closed_at >= published_at:
        tally.hours_to_close.append((closed_at - published_at).total_seconds() / 3600)
    if closed and closed_at:
        tally.closed_with_time += 1
        verified_at = times.get(_S.VERIFIED_FIXED)
        if verified_at and verified_at - closed_at <= window:
            tally.verified_in_time += 1
