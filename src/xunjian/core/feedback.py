"""Feedback on an issue and the history of an issue: what people and systems said of it.

:class:`Feedback` is what a reviewer or the case platform says of an issue — it is real,
it is not there (a false positive), its class is wrong, its place is wrong. False positives and
corrections become labelled examples for the ML loop (issue 8), so every one is kept.

:class:`IssueEvent` is one line of an issue's history: created, observed again, status changed,
feedback given, a case-system message. The map page shows the history; 评价 statistics read it.

May import: the standard library and ``xunjian.core`` / ``xunjian.errors`` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class FeedbackKind(StrEnum):
    CONFIRM = "confirm"
    FALSE_POSITIVE = "false_positive"
    WRONG_CLASS = "wrong_class"
    WRONG_PLACE = "wrong_place"


class FeedbackSource(StrEnum):
    REVIEWER = "reviewer"
    CASE_PLATFORM = "case_platform"


@dataclass(frozen=True, slots=True)
class Feedback:
    """One judgement of an issue. ``class_name`` is the right class for ``wrong_class``;
    ``lat``/``lon`` the right place for ``wrong_place``."""

    issue_id: str
    kind: FeedbackKind
    source: FeedbackSource = FeedbackSource.REVIEWER
    author: str = ""
    note: str = ""
    class_name: str | None = None
    lat: float | None = None
    lon: float | None = None
    id: int | None = None
    created_at: datetime | None = None


class EventKind(StrEnum):
    CREATED = "created"
    OBSERVED = "observed"
    STATUS = "status"
    FEEDBACK = "feedback"
    VERIFICATION = "verification"
    CASE = "case"


@dataclass(frozen=True, slots=True)
class IssueEvent:
    """One line of an issue's history, oldest first when listed."""

    issue_id: str
    kind: EventKind
    at: datetime
    source: str
    from_status: str | None = None
    to_status: str | None = None
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
