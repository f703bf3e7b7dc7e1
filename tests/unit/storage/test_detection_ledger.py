"""The detection ledger: detect once per (batch, frame, detector, model version)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from xunjian.core.records import Detection
from xunjian.storage.detections import DetectionLedger


@pytest.fixture
def ledger(database_url: str) -> Iterator[DetectionLedger]:
    with DetectionLedger(database_url) as opened:
        yield opened


def det(detector: str, version: str, frame: str, x: float = 10.0) -> Detection:
    return Detection(detector, "pothole", 0.7, (x, 20.0, x + 30.0, 50.0), version, frame)


def test_saved_frames_come_back_per_detector_version(ledger: DetectionLedger) -> None:
    versions = {"road_damage": "v1", "illegal_dumping": "d1"}
    assert ledger.save("B1", "raw/B1/a.jpg", versions, [det("road_damage", "v1", "raw/B1/a.jpg")])
    assert ledger.save("B1", "raw/B1/b.jpg", versions, [])  # nothing found is remembered too
    assert not ledger.save("B1", "raw/B1/b.jpg", versions, [])  # idempotent
    held = ledger.load_batch("B1", versions)
    assert set(held) == {"raw/B1/a.jpg", "raw/B1/b.jpg"}
    assert held["raw/B1/a.jpg"].done == {"road_damage", "illegal_dumping"}
    assert held["raw/B1/a.jpg"].detections == [det("road_damage", "v1", "raw/B1/a.jpg")]
    assert held["raw/B1/b.jpg"].detections == []
    # a new model version is not done yet; the other detector still is
    newer = ledger.load_batch("B1", {"road_damage": "v2", "illegal_dumping": "d1"})
    assert newer["raw/B1/a.jpg"].done == {"illegal_dumping"}
    assert newer["raw/B1/a.jpg"].detections == []
    assert ledger.load_batch("B2", versions) == {}
    assert ledger.frames_done("B1", versions) == 2
    assert ledger.frames_done("B1", {"road_damage": "v2", "illegal_dumping": "d1"}) == 0
    assert ledger.frames_done("B2", versions) == 0
    ledger.forget_batch("B1", ["road_damage"])
    assert ledger.load_batch("B1", versions)["raw/B1/a.jpg"].done == {"illegal_dumping"}


@pytest.mark.integration
def test_a_frame_recorded_by_another_process_meanwhile_is_not_an_error(postgres_url: str) -> None:
    from sqlalchemy import event

    versions = {"road_damage": "v1"}
    with DetectionLedger(postgres_url) as ours, DetectionLedger(postgres_url) as theirs:
        raced = []

        def other_process_first(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            if statement.startswith("INSERT INTO frame_detections") and not raced:
                raced.append(True)  # after our check, before our insert
                theirs.save(
                    "B1", "raw/B1/a.jpg", versions, [det("road_damage", "v1", "raw/B1/a.jpg")]
                )

        event.listen(ours.engine, "before_cursor_execute", other_process_first)
        assert not ours.save("B1", "raw/B1/a.jpg", versions, [det("road_damage", "v1", "a", 99)])
        assert raced
        held = ours.load_batch("B1", versions)["raw/B1/a.jpg"]
        assert held.detections == [det("road_damage", "v1", "raw/B1/a.jpg")]  # theirs, once
