"""评价 statistics from issue histories: counts, time to close, share verified in time."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.fixtures.cases import ORIGIN, T0, Clock, grid_flight
from xunjian.cases.stats import evaluation_stats
from xunjian.core.feedback import Feedback, FeedbackKind, FeedbackSource
from xunjian.core.issues import IssueStatus
from xunjian.core.verify import Outcome, VerificationDecision
from xunjian.errors import InputError
from xunjian.storage.issues import IssueStore

S = IssueStatus


def test_the_loop_is_counted_per_class_and_overall(database_url: str) -> None:
    clock = Clock(T0)
    with IssueStore(database_url, clock=clock) as store:
        a, b, c, d = store.record_batch("B1", grid_flight("B1", 4)).new
        e, f = store.record_batch(
            "B2", grid_flight("B2", 2, cls="garbage_pile", offset=(500.0, 0.0))
        ).new
        for issue_id in (a, b, c, e):
            store.set_status(issue_id, S.PUBLISHED, source="file")
        clock.advance(hours=4)
        store.set_status(e, S.CLOSED, source="case_platform")  # 4 h
        clock.advance(hours=20)
        store.set_status(a, S.CLOSED, source="case_platform")  # 24 h
        clock.advance(hours=24)
        store.set_status(b, S.CLOSED, source="case_platform")  # 48 h
        store.add_feedback(Feedback(c, FeedbackKind.FALSE_POSITIVE, FeedbackSource.CASE_PLATFORM))
        store.add_feedback(Feedback(f, FeedbackKind.FALSE_POSITIVE, FeedbackSource.REVIEWER))
        clock.advance(days=2)
        store.record_verifications(
            [
                VerificationDecision(a, "B3", Outcome.VERIFIED_FIXED, 2, 2),
                VerificationDecision(b, "B3", Outcome.RECURRED, 2, 2),
            ]
        )
        clock.advance(days=9)
        store.record_verifications([VerificationDecision(e, "B4", Outcome.VERIFIED_FIXED, 2, 2)])

        stats = evaluation_stats(store, within_days=7)
        json.dumps(stats)  # JSON-able as the service returns it
        overall = stats["overall"]
        assert {k: overall[k] for k in ("found", "open", "published", "closed")} == {
            "found": 6,
            "open": 1,
            "published": 4,
            "closed": 3,
        }
        assert (overall["verified_fixed"], overall["recurred"], overall["rejected"]) == (2, 1, 2)
        assert overall["median_hours_to_close"] == 24.0
        assert overall["share_verified_within_days"] == pytest.approx(1 / 3, abs=1e-4)
        assert overall["awaiting_verification"] == 0
        pothole, garbage = stats["by_class"]["pothole"], stats["by_class"]["garbage_pile"]
        assert (pothole["found"], pothole["closed"], pothole["share_verified_within_days"]) == (
            4,
            2,
            0.5,
        )
        assert garbage["zh"] == "暴露垃圾" and garbage["share_verified_within_days"] == 0.0
        assert (
            evaluation_stats(store, within_days=14)["by_class"]["garbage_pile"][
                "share_verified_within_days"
            ]
            == 1.0
        )

        west = (ORIGIN[1] - 0.001, ORIGIN[0] - 0.001, ORIGIN[1] + 0.002, ORIGIN[0] + 0.002)
        assert set(evaluation_stats(store, area=west)["by_class"]) == {"pothole"}
        assert d in {i.id for i in store.issues(status="candidate")}
        later = evaluation_stats(store, since=T0 + timedelta(days=30))
        assert later["overall"]["found"] == 0 and later["overall"]["median_hours_to_close"] is None
        with pytest.raises(InputError, match="min ≤ max"):
            evaluation_stats(store, area=(1.0, 1.0, 0.0, 0.0))
        with pytest.raises(InputError, match="within_days"):
            evaluation_stats(store, within_days=-1)


def _square(name: str, lon0: float, lat0: float, lon1: float, lat1: float) -> dict:
    ring = [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]
    return {"type": "Feature", "properties": {"name": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}  # fmt: skip


def test_figures_come_per_configured_area_too(database_url: str) -> None:
    from xunjian.core.areas import OUTSIDE, parse_areas

    lat, lon = ORIGIN
    with IssueStore(database_url, clock=Clock(T0)) as store:
        west = store.record_batch("B1", grid_flight("B1", 4)).new
        east = store.record_batch(
            "B2", grid_flight("B2", 2, cls="garbage_pile", offset=(500.0, 0.0))
        ).new
        store.set_status(west[0], S.PUBLISHED, source="file")
        both = parse_areas({"type": "FeatureCollection", "features": [
            _square("渝中区", lon - 0.002, lat - 0.002, lon + 0.002, lat + 0.002),
            _square("江北区", lon + 0.002, lat - 0.002, lon + 0.01, lat + 0.002),
        ]})  # fmt: skip
        stats = evaluation_stats(store, areas=both)
        json.dumps(stats)
        assert list(stats["by_area"]) == ["渝中区", "江北区"]
        yuzhong, jiangbei = stats["by_area"]["渝中区"], stats["by_area"]["江北区"]
        assert (yuzhong["found"], yuzhong["published"]) == (len(west), 1)
        assert set(yuzhong["by_class"]) == {"pothole"}
        assert jiangbei["found"] == len(east) and set(jiangbei["by_class"]) == {"garbage_pile"}
        assert jiangbei["by_class"]["garbage_pile"]["zh"] == "暴露垃圾"

        only_west = parse_areas({"type": "FeatureCollection", "features": [
            _square("渝中区", lon - 0.002, lat - 0.002, lon + 0.002, lat + 0.002)]})  # fmt: skip
        split = evaluation_stats(store, areas=only_west)["by_area"]
        assert list(split) == ["渝中区", OUTSIDE] and split[OUTSIDE]["found"] == len(east)
        assert "by_area" not in evaluation_stats(store)
