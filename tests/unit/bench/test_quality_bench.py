"""detector-quality on the real validation split: the model in service against the previous one
(same run, same images). Quick mode: the first 24 validation images."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xunjian.core.taxonomy import Detector, classes_of
from xunjian.settings import Settings

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def test_the_model_in_service_is_compared_with_the_previous_one(
    settings: Settings, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xunjian.bench.quality import QUICK_IMAGES, bench_detector_quality
    from xunjian.models.registry import WEIGHTS_DIR
    from xunjian.models.versions import ModelRegistry

    monkeypatch.setenv("XUNJIAN_REAL_DATA_DIR", str(shared_data))
    same = tmp_path / "road_damage"
    shutil.copytree(WEIGHTS_DIR / "road_damage", same)

    # a candidate with the shipped weights scores exactly what the shipped model scores
    doc = bench_detector_quality(quick=True, model=same / "model.onnx")
    assert list(doc["figures"]) == ["road_damage"]
    entry = doc["figures"]["road_damage"]
    assert entry["current"]["role"] == "candidate (--model)"
    assert entry["peer"]["model"] == "shipped" and entry["peer"]["role"] == "in service"
    assert entry["current"]["images"] == QUICK_IMAGES
    assert set(entry["current"]["per_class"]) == set(classes_of(Detector.ROAD_DAMAGE))
    assert 0.0 <= entry["current"]["map50"] <= 1.0
    assert doc["ratios"]["road_damage"] == {"map50_minus_peer": 0.0, "map50_95_minus_peer": 0.0}

    # shipped models in service and no history: nothing earlier to compare with, said so
    doc = bench_detector_quality(quick=True)
    assert doc["figures"]["spoil_truck"] == {"status": "no real validation images"}
    road = doc["figures"]["road_damage"]
    assert road["current"]["model"] == "shipped" and road["peer"] is None
    assert "history" in road["peer_reason"] and doc["ratios"] == {}
    assert doc["figures"]["illegal_dumping"]["current"]["images"] == QUICK_IMAGES

    # after a promotion, the model it replaced (the shipped one) is the peer
    registry = ModelRegistry.from_settings(settings)
    version, _ = registry.register(same, detector="road_damage", version="rd-copy")
    assert registry.promote("road_damage", version, by="test").changed
    doc = bench_detector_quality(quick=True)
    road = doc["figures"]["road_damage"]
    assert (road["current"]["model"], road["peer"]["model"]) == ("rd-copy", "shipped")
    assert road["current"]["map50"] == road["peer"]["map50"]
