"""The model registry (models/versions.py) and its gate (models/promotion.py) on toy models.

The store is a local directory (one contract test runs on the S3 test server); models are toy
ONNX graphs with real cards whose figures each test chooses (tests/fixtures/modelcards.py).
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.modelcards import evaluation, model_folder
from xunjian.errors import ConfigurationError, DetectorError, InputError, ObjectNotFoundError
from xunjian.models.promotion import compare, gate_from_cards, rollback_target
from xunjian.models.registry import list_models as reexported
from xunjian.models.versions import ModelRegistry, check_version, list_models
from xunjian.storage.localstore import LocalStore
from xunjian.storage.objectstore import ObjectStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """A weights folder with a shipped road_damage model at mAP50 0.5 (real val)."""
    weights = tmp_path / "weights"
    model_folder(weights / "road_damage", version="rd-shipped", map50=0.5, seed=9)
    return weights


def registry_on(store: ObjectStore, tmp_path: Path, weights: Path) -> ModelRegistry:
    return ModelRegistry(store, cache_dir=tmp_path / "cache", weights_dir=weights, clock=Clock())


@pytest.fixture
def registry(tmp_path: Path, shipped: Path) -> ModelRegistry:
    return registry_on(LocalStore(tmp_path / "store"), tmp_path, shipped)


def candidate(tmp_path: Path, version: str, map50: float = 0.6, **kwargs: Any) -> Path:
    return model_folder(tmp_path / "cands" / version, version=version, map50=map50, **kwargs)


def test_register_is_immutable_and_idempotent(registry: ModelRegistry, tmp_path: Path) -> None:
    folder = candidate(tmp_path, "rd-2", seed=1)
    assert registry.register(folder, detector="road_damage", by="ana") == ("rd-2", True)
    assert registry.register(folder, by="ana") == ("rd-2", False)  # same weights: no-op
    keys = [i.key for i in registry.store.list("models/road_damage/rd-2/")]
    assert keys == [
        f"models/road_damage/rd-2/{n}" for n in ("MODEL_CARD.md", "card.json", "model.onnx")
    ]
    card = registry.card("road_damage", "rd-2")
    assert card["registry"]["registered_by"] == "ana" and card["version"] == "rd-2"
    other = candidate(tmp_path, "other", seed=2)
    with pytest.raises(InputError, match=r"rd-2 is registered with other weights"):
        registry.register(other, version="rd-2")
    assert registry.register(other, version="rd-3")[0] == "rd-3"
    assert registry.card("road_damage", "rd-3")["version"] == "rd-3"
    md = registry.store.get_bytes("models/road_damage/rd-3/MODEL_CARD.md").decode()
    assert md.startswith("# road_damage detector — rd-3")
    with pytest.raises(InputError, match="expected a card for detector spoil_truck"):
        registry.register(other, detector="spoil_truck", version="rd-4")
    with pytest.raises(InputError, match="model version"):
        registry.register(other, version="../x")


def test_register_checks_the_card_against_the_weights(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    folder = candidate(tmp_path, "rd-bad")
    (folder / "model.onnx").write_bytes(b"changed after the card was written")
    with pytest.raises(ConfigurationError, match="expected sha256"):
        registry.register(folder)
    assert registry.version_names("road_damage") == []


def test_gate_refuses_a_worse_candidate_unless_forced_with_a_reason(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    worse = candidate(tmp_path, "rd-worse", map50=0.45, per_class={"pothole": 0.2})
    registry.register(worse)
    refused = registry.promote("road_damage", "rd-worse", by="ana")
    assert not refused.changed and refused.gate is not None and not refused.gate.passed
    assert any("overall mAP50 0.450 < baseline 0.500" in f for f in refused.gate.failures)
    assert any(f.startswith("pothole: mAP50 0.200") for f in refused.gate.failures)
    assert registry.active_version("road_damage") is None  # shipped still serves
    with pytest.raises(InputError, match="needs a reason"):
        registry.promote("road_damage", "rd-worse", force=True)
    forced = registry.promote("road_damage", "rd-worse", force=True, reason="hotfix", by="bo")
    assert forced.changed and forced.forced
    pointer = registry.pointer("road_damage")
    assert pointer.version == "rd-worse"
    (entry,) = pointer.history
    assert entry["forced"] is True and entry["reason"] == "hotfix" and entry["by"] == "bo"
    assert entry["from_version"] is None and entry["gate"]["passed"] is False
    assert entry["at"].startswith("2026-03-01T09:")


def test_gate_passes_within_tolerance_and_compares_like_with_like(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    registry.register(candidate(tmp_path, "rd-ok", map50=0.495, per_class={"pothole": 0.48}))
    promoted = registry.promote("road_damage", "rd-ok", by="ana", reason="weekly")
    assert promoted.changed and not promoted.forced and promoted.gate and promoted.gate.passed
    assert promoted.gate.basis == "cards, real_val"
    again = registry.promote("road_damage", "rd-ok")
    assert not again.changed and again.gate is None  # already in service
    registry.register(candidate(tmp_path, "rd-synth", map50=0.9, synthetic=True))
    gate = registry.promote("road_damage", "rd-synth").gate
    assert gate is not None and not gate.passed and "not comparable" in gate.failures[0]


def test_gate_rules() -> None:
    base = evaluation("spoil_truck", 0.5, {"spoil_truck_uncovered": None}).to_dict()
    missing = evaluation("spoil_truck", 0.6, {"spoil_truck": None}).to_dict()
    assert compare(missing, base) == ["spoil_truck: candidate has no figures, baseline mAP50 0.500"]
    extra = evaluation("spoil_truck", 0.5).to_dict()  # figures where the baseline has none
    assert compare(extra, base) == []
    assert gate_from_cards({"metrics": {}}, None).passed  # nothing in service yet
    unmeasured = {"metrics": {"real_val": None, "synthetic_val": None}}
    assert gate_from_cards({"metrics": {"real_val": base}}, unmeasured).passed
    different = evaluation("spoil_truck", 0.5, data="other").to_dict()
    result = gate_from_cards({"metrics": {"real_val": different}}, {"metrics": {"real_val": base}})
    assert result.passed and "different data" in result.notes[0]


def test_benchmark_mode_evaluates_both_models_on_one_split(
    registry: ModelRegistry, tmp_path: Path, shipped: Path
) -> None:
    registry.register(candidate(tmp_path, "rd-b", map50=0.1))  # its card alone would fail
    seen: list[tuple[Path, Path, int]] = []

    def evaluate(model: Path, data: Path, imgsz: int) -> dict[str, Any]:
        seen.append((model, data, imgsz))
        return evaluation("road_damage", 0.3 if "cache" in model.parts else 0.2).to_dict()

    bench = tmp_path / "bench" / "data.yaml"
    promoted = registry.promote("road_damage", "rd-b", benchmark=bench, evaluate=evaluate)
    assert promoted.changed and promoted.gate is not None
    assert promoted.gate.basis == f"benchmark {bench}"
    assert [s[0] for s in seen] == [
        tmp_path / "cache" / "road_damage" / "rd-b" / "model.onnx",
        shipped / "road_damage" / "model.onnx",
    ]
    assert {s[1:] for s in seen} == {(bench, 64)}


def test_rollback_walks_back_through_promotions(registry: ModelRegistry, tmp_path: Path) -> None:
    for i, version in enumerate(("rd-a", "rd-b")):
        registry.register(candidate(tmp_path, version, map50=0.6 + i / 10, seed=i))
        assert registry.promote("road_damage", version, by="ana").changed
    back = registry.rollback("road_damage", by="bo", reason="false alarms")
    assert (back.from_version, back.version, back.changed) == ("rd-b", "rd-a", True)
    assert registry.rollback("road_damage").version is None  # before rd-a: shipped
    assert registry.active_version("road_damage") is None
    with pytest.raises(InputError, match="nothing to roll back"):
        registry.rollback("road_damage")
    assert registry.rollback("road_damage", to="rd-b").version == "rd-b"
    history = registry.pointer("road_damage").history
    assert [(h["action"], h["version"], h["from_version"]) for h in history] == [
        ("promote", "rd-a", None),
        ("promote", "rd-b", "rd-a"),
        ("rollback", "rd-a", "rd-b"),
        ("rollback", None, "rd-a"),
        ("rollback", "rd-b", None),
    ]
    assert history[2]["by"] == "bo" and history[2]["reason"] == "false alarms"
    with pytest.raises(ObjectNotFoundError, match="rd-zz is not registered"):
        registry.rollback("road_damage", to="rd-zz")
    assert rollback_target(history, "rd-b") == "rd-a"


def test_two_promotions_racing_keep_both_history_entries(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    for i, version in enumerate(("rd-a", "rd-b")):
        registry.register(candidate(tmp_path, version, map50=0.6 + i / 10, seed=i))
    # both writers read the pointer before either writes it (what a race looks like)
    seen = registry.pointer("road_damage")
    for version, by in (("rd-a", "ana"), ("rd-b", "bo")):
        registry._write_pointer(seen, version, registry._entry("promote", version, None, by, ""))
    assert registry.active_version("road_damage") == "rd-b"  # the last writer's pointer
    history = registry.pointer("road_damage").history
    assert sorted(h["by"] for h in history) == ["ana", "bo"]
    assert len({h["id"] for h in history}) == 2
    # later moves come after both, and rollback still finds its target
    registry.promote("road_damage", "rd-a", by="cy", force=True, reason="race test")
    assert [h["by"] for h in registry.pointer("road_damage").history][-1] == "cy"
    assert registry.rollback("road_damage").version == "rd-b"


def test_a_pointer_written_before_history_objects_keeps_its_history(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    registry.register(candidate(tmp_path, "rd-a", seed=0))
    old = {"action": "promote", "version": "rd-a", "from_version": None, "by": "ana",
           "at": "2026-01-01T00:00:00+00:00", "reason": ""}  # fmt: skip
    registry.store.put_bytes(
        "models/road_damage/active.json",
        json.dumps(
            {"schema": 1, "detector": "road_damage", "version": "rd-a", "history": [old]}
        ).encode(),
    )
    assert registry.pointer("road_damage").history == (old,)
    assert registry.rollback("road_damage", by="bo").version is None
    assert [h["by"] for h in registry.pointer("road_damage").history] == ["ana", "bo"]


def test_reserved_names_are_not_versions() -> None:
    for name in ("active.json", "history"):
        with pytest.raises(InputError, match="model version"):
            check_version(name)


def test_fetch_checks_the_weights_and_load_uses_the_card(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    registry.register(candidate(tmp_path, "rd-f", seed=3))
    detector = registry.load("road_damage", "rd-f")
    assert detector.version == "rd-f" and detector.backend.input_size == (64, 64)
    cached = tmp_path / "cache" / "road_damage" / "rd-f" / "model.onnx"
    cached.write_bytes(b"damaged cache")
    registry.fetch("road_damage", "rd-f")  # downloaded again
    assert registry.load("road_damage", "rd-f").version == "rd-f"
    registry.store.put_bytes("models/road_damage/rd-f/model.onnx", b"tampered in the store")
    cached.unlink()
    with pytest.raises(DetectorError, match="expected sha256"):
        registry.fetch("road_damage", "rd-f")
    assert not cached.exists()
    assert registry.load("road_damage", None).version == "rd-shipped"
    assert registry.active_set(["road_damage"]).names == ("road_damage",)


def test_list_models_is_json_and_says_where_the_model_comes_from(
    registry: ModelRegistry, tmp_path: Path, shipped: Path
) -> None:
    listed = list_models(registry.store, weights_dir=shipped)
    assert reexported(registry.store, weights_dir=shipped) == listed
    road = next(m for m in listed if m["detector"] == "road_damage")
    assert road["source"] == "shipped" and road["active_version"] == "rd-shipped"
    assert road["versions"] == [] and road["shipped"]["metrics"]["map50"] == 0.5
    dumping = next(m for m in listed if m["detector"] == "illegal_dumping")
    assert dumping["source"] is None and dumping["active_version"] is None
    registry.register(candidate(tmp_path, "rd-l"))
    registry.promote("road_damage", "rd-l", by="ana")
    listed = json.loads(json.dumps(list_models(registry.store, weights_dir=shipped)))
    road = next(m for m in listed if m["detector"] == "road_damage")
    assert road["source"] == "store" and road["active_version"] == "rd-l"
    (version,) = road["versions"]
    assert version["active"] and version["metrics"]["basis"] == "real_val"
    assert version["metrics"]["classes"]["pothole"] == 0.6
    assert version["data"]["sources"] == ["toy"] and version["created_at"]
    assert road["history"][0]["by"] == "ana"


def test_models_cli_register_promote_rollback_list_export(settings, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from xunjian.cli import app

    runner = CliRunner()
    good = candidate(tmp_path, "rd-cli", map50=0.9)
    done = runner.invoke(app, ["models", "register", str(good / "model.onnx"), "--by", "ana"])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "road_damage@rd-cli"
    ok = runner.invoke(app, ["models", "promote", "road_damage", "rd-cli", "--by", "ana"])
    assert ok.exit_code == 0, ok.output
    assert "shipped → rd-cli" in " ".join(ok.output.split())
    worse = candidate(tmp_path, "rd-low", map50=0.1, seed=5)
    assert runner.invoke(app, ["models", "register", str(worse)]).exit_code == 0
    refused = runner.invoke(app, ["models", "promote", "road_damage", "rd-low"])
    assert refused.exit_code == 1 and "REFUSED" in refused.output
    listed = runner.invoke(app, ["models", "list", "--json"])
    road = next(m for m in json.loads(listed.stdout) if m["detector"] == "road_damage")
    assert road["active_version"] == "rd-cli" and len(road["versions"]) == 2
    assert runner.invoke(app, ["models", "list"]).exit_code == 0
    out = tmp_path / "exported"
    exported = runner.invoke(app, ["models", "export", "road_damage@active", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "card.json", "model.onnx"]
    back = runner.invoke(app, ["models", "rollback", "road_damage", "--reason", "test"])
    assert back.exit_code == 0 and "rd-cli → shipped" in " ".join(back.output.split())
    bare = runner.invoke(app, ["models", "register", str(tmp_path / "nothing.onnx")])
    assert bare.exit_code == 2 and "--detector" in bare.output


@pytest.mark.integration
def test_registry_on_the_s3_test_server(
    s3_store: ObjectStore, tmp_path: Path, shipped: Path
) -> None:
    registry = registry_on(s3_store, tmp_path, shipped)
    registry.register(candidate(tmp_path, "rd-s3"))
    assert registry.promote("road_damage", "rd-s3", by="ana").changed
    assert registry.active_set(["road_damage"])["road_damage"].version == "rd-s3"
    shutil.rmtree(tmp_path / "cache")
    assert registry.rollback("road_damage").version is None
    assert list_models(s3_store, weights_dir=shipped)[0]["versions"][0]["version"] == "rd-s3"


def test_a_registered_version_carries_its_working_ground_sampling(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    version, _ = registry.register(candidate(tmp_path, "rd-g", seed=4), gsd_m=0.08)
    assert registry.card("road_damage", version)["gsd_m"] == 0.08
    assert registry.load("road_damage", version).gsd_m == 0.08
    plain, _ = registry.register(candidate(tmp_path, "rd-p", seed=5))
    assert registry.load("road_damage", plain).gsd_m is None
    with pytest.raises(DetectorError, match="gsd_m"):
        registry.register(candidate(tmp_path, "rd-bad", seed=6), gsd_m=-1.0)
