"""Hot reload (models/reload.py): pointer checks on a fake clock, atomic swaps, failures kept out.

Toy ONNX models with real cards (tests/fixtures/modelcards.py) in a local store; the clock is
a number the test moves.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.fixtures.modelcards import model_folder
from xunjian.errors import DetectorError
from xunjian.models.reload import ReloadingDetectorSet
from xunjian.models.versions import ModelRegistry
from xunjian.storage.localstore import LocalStore


class CountingStore(LocalStore):
    """Counts reads of active pointers: the cost of a check."""

    pointer_reads = 0

    def get_bytes(self, key: str) -> bytes:
        if key.endswith("/active.json"):
            self.pointer_reads += 1
        return super().get_bytes(key)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    weights = tmp_path / "weights"
    model_folder(weights / "road_damage", version="rd-shipped", seed=9)
    model_folder(weights / "illegal_dumping", "illegal_dumping", version="id-shipped", seed=8)
    store = CountingStore(tmp_path / "store")
    registry = ModelRegistry(store, cache_dir=tmp_path / "cache", weights_dir=weights)
    for i, version in enumerate(("rd-a", "rd-b")):
        folder = model_folder(tmp_path / version, version=version, map50=0.6 + i / 10, seed=i)
        registry.register(folder)
    return registry


def reloading(registry: ModelRegistry, clock: FakeClock, **kwargs) -> ReloadingDetectorSet:
    names = kwargs.pop("detectors", ["road_damage", "illegal_dumping"])
    return ReloadingDetectorSet(registry, detectors=names, interval_s=30, clock=clock, **kwargs)


def test_a_promotion_is_picked_up_at_the_next_check_and_batches_keep_their_set(
    registry: ModelRegistry,
) -> None:
    clock = FakeClock()
    serving = reloading(registry, clock)
    first = serving.current()
    assert serving.versions == {"road_damage": "rd-shipped", "illegal_dumping": "id-shipped"}
    store = registry.store
    assert isinstance(store, CountingStore)
    registry.promote("road_damage", "rd-a")
    reads = store.pointer_reads
    clock.t += 29
    assert serving.current() is first  # not due: no pointer read at all
    assert store.pointer_reads == reads
    clock.t += 1
    second = serving.current()
    assert second is not first and second["road_damage"].version == "rd-a"
    assert first["road_damage"].version == "rd-shipped"  # a batch holding it is unaffected
    assert second["illegal_dumping"] is first["illegal_dumping"]  # unchanged: reused as is
    assert store.pointer_reads == reads + 2 and serving.reloads == 1
    clock.t += 30
    assert serving.current() is second  # checked, nothing moved: same set
    registry.rollback("road_damage")
    assert serving.refresh() and serving.current()["road_damage"].version == "rd-shipped"


def test_a_version_that_fails_to_load_is_kept_out_and_retried(registry: ModelRegistry) -> None:
    clock = FakeClock()
    serving = reloading(registry, clock)
    registry.promote("road_damage", "rd-a")
    in_service = serving.current()
    good = registry.store.get_bytes("models/road_damage/rd-b/model.onnx")
    registry.store.put_bytes("models/road_damage/rd-b/model.onnx", b"broken upload")
    registry.promote("road_damage", "rd-b")
    clock.t += 30
    assert serving.current() is in_service  # rd-a keeps serving
    assert "expected sha256" in serving.errors["road_damage"]
    registry.store.put_bytes("models/road_damage/rd-b/model.onnx", good)  # repaired
    clock.t += 30
    assert serving.current()["road_damage"].version == "rd-b" and not serving.errors


def test_detectors_without_any_model_are_named_missing(registry: ModelRegistry) -> None:
    serving = reloading(registry, FakeClock(), detectors=["road_damage", "spoil_truck"])
    assert serving.current().names == ("road_damage",)
    assert serving.missing == ["spoil_truck"]
    nothing = reloading(registry, FakeClock(), detectors=["spoil_truck"])
    with pytest.raises(DetectorError, match="no detector model is available"):
        nothing.current()


def test_other_threads_get_the_set_in_service_while_one_reloads(registry: ModelRegistry) -> None:
    clock = FakeClock()
    serving = reloading(registry, clock, detectors=["road_damage"])
    old = serving.current()
    registry.promote("road_damage", "rd-a")
    clock.t += 30
    loading, release = threading.Event(), threading.Event()
    load = registry.load

    def slow_load(name: str, version: str | None):
        loading.set()
        assert release.wait(5)
        return load(name, version)

    registry.load = slow_load  # type: ignore[method-assign]
    worker = threading.Thread(target=serving.current)
    worker.start()
    assert loading.wait(5)
    assert serving.current() is old  # not blocked, not half-built
    release.set()
    worker.join(5)
    assert serving.current()["road_damage"].version == "rd-a"


def test_from_settings_uses_the_interval_and_cache_dir(settings) -> None:
    serving = ReloadingDetectorSet.from_settings(settings)
    assert serving.interval_s == settings.model_reload_interval_s == 30.0
    assert serving.registry.cache_dir == settings.data_dir / "models"
