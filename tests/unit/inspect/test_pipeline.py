"""The whole pipeline on a generated flight whose targets and poses are known exactly.

White squares are painted on the ground at known places and drawn into every frame that sees
them through the same camera model the pipeline inverts; a colour-threshold test double finds
them. So every stage after detection — georef, fusion, evidence, verification, outputs — is
checked against truth, and a second and third flight exercise updates and verification.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.flights import CHONGQING
from tests.fixtures.models import BlobBackend
from xunjian.core.camera import ground_enu_to_pixel
from xunjian.core.geo import en_to_latlon, latlon_to_en
from xunjian.core.issues import IssueStatus
from xunjian.core.records import CameraIntrinsics, CameraPose
from xunjian.datasets.flightgen import encode_jpeg, lawnmower_poses
from xunjian.inspect.pipeline import Services, process_batch, refinement_key, run_folder
from xunjian.models.detector import Detector, DetectorSet
from xunjian.settings import Settings

pytestmark = pytest.mark.slow

W, H = 800, 600
SQUARES_EN = {"A": (8.0, 6.0), "B": (20.0, 22.0), "C": (30.0, 4.0), "D": (14.0, 30.0)}
SIDE_M = 0.8


def intrinsics() -> CameraIntrinsics:
    # what ingest reads for an FC220 at 800×600: 4.73 mm lens, 6.17 × 4.55 mm sensor
    return CameraIntrinsics(W, H, 4.73 / 6.17 * W, 4.73 / 4.55 * H, W / 2, H / 2)


def fly(folder: Path, squares: dict[str, tuple[float, float]], start: datetime) -> Path:
    folder.mkdir(parents=True)
    poses = lawnmower_poses(*CHONGQING, rows=3, cols=3, spacing_m=15.0, height_m=40.0, start=start)
    k = intrinsics()
    rng = np.random.default_rng(0)
    for index, tags in enumerate(poses, start=1):
        image = rng.integers(50, 90, size=(H, W, 3), dtype=np.uint8)
        pose = CameraPose(tags.lat, tags.lon, 40.0, tags.gimbal_yaw_deg or 0.0, -90.0)
        cam_e, cam_n = latlon_to_en(tags.lat, tags.lon, *CHONGQING)
        for e, n in squares.values():
            corners = np.array(
                [
                    [e - SIDE_M / 2 - cam_e, n - SIDE_M / 2 - cam_n],
                    [e + SIDE_M / 2 - cam_e, n - SIDE_M / 2 - cam_n],
                    [e + SIDE_M / 2 - cam_e, n + SIDE_M / 2 - cam_n],
                    [e - SIDE_M / 2 - cam_e, n + SIDE_M / 2 - cam_n],
                ]
            )
            uv, front = ground_enu_to_pixel(pose, k, corners)
            inside = (uv[:, 0] > 2) & (uv[:, 0] < W - 3) & (uv[:, 1] > 2) & (uv[:, 1] < H - 3)
            if front.all() and inside.all():
                import cv2

                cv2.fillPoly(image, [np.round(uv).astype(np.int32)], (255, 255, 255))
        (folder / f"DJI_{index:04d}.JPG").write_bytes(encode_jpeg(image[:, :, ::-1], tags))
    return folder


@pytest.fixture
def squares_set() -> DetectorSet:
    backend = BlobBackend(input_size=(640, 640))
    classes = ("pothole", "garbage_pile", "construction_waste")
    return DetectorSet([Detector("road_damage", backend, classes, "blob@test")])


def truth_latlon(name: str) -> tuple[float, float]:
    lat, lon = en_to_latlon(*SQUARES_EN[name], *CHONGQING)
    return float(lat), float(lon)


def test_flights_become_one_issue_per_target_and_later_flights_verify(
    tmp_path: Path, settings: Settings, squares_set: DetectorSet
) -> None:
    start = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    services = Services.open(settings)
    try:
        first = fly(tmp_path / "f1", SQUARES_EN, start)
        _, result = run_folder(services, first, detectors=squares_set, out_dir=tmp_path / "out1")
        assert result.frame_errors == []
        assert result.fusion is not None
        issues = services.issues.issues()
        assert len(issues) == len(SQUARES_EN) == len(result.fusion.new)
        for issue in issues:
            assert issue.class_name == "pothole"
            assert issue.observation_count >= 2
            errors = [
                float(np.hypot(*latlon_to_en(issue.lat, issue.lon, *truth_latlon(n))))
                for n in SQUARES_EN
            ]
            assert min(errors) < 0.3  # exact poses: far below a metre
            assert services.store.exists(f"evidence/{issue.id}.jpg")

        out = tmp_path / "out1"
        geojson = json.loads((out / "issues.geojson").read_text())
        assert len(geojson["features"]) == len(SQUARES_EN)
        page = (out / "report.html").read_text()
        assert page.count("data:image/jpeg;base64,") == len(SQUARES_EN)
        summary = json.loads((out / "summary.json").read_text())
        assert summary["issues_new"] == len(SQUARES_EN)
        stages = {"ingest_s", "refine_s", "detect_s", "verify_s", "fuse_s", "evidence_s"}
        assert set(summary["stage_seconds"]) == stages
        assert all(v >= 0 for v in summary["stage_seconds"].values())

        # the same batch again: nothing new anywhere
        _, again = run_folder(services, first, detectors=squares_set, out_dir=tmp_path / "o1b")
        assert again.fusion is not None
        assert again.fusion.new == () and again.fusion.observations_added == 0
        # ... and no frame is decoded or detected again: the ledger gives back the boxes
        assert (result.frames_detected, result.frames_reused) == (len(result.ingest.frames), 0)
        assert (again.frames_detected, again.frames_reused) == (0, len(result.ingest.frames))
        assert again.detections == result.detections
        assert len(services.issues.issues()) == len(SQUARES_EN)

        # a second flight over the same world updates the issues, opens none
        second = fly(tmp_path / "f2", SQUARES_EN, start + timedelta(days=1))
        _, update = run_folder(services, second, detectors=squares_set, out_dir=tmp_path / "o2")
        assert update.fusion is not None and update.fusion.new == ()
        assert len(update.fusion.updated) == len(SQUARES_EN)

        # the city closes A and B; A is repaired, B is not
        by_place = {
            n: min(
                services.issues.issues(),
                key=lambda i, n=n: float(np.hypot(*latlon_to_en(i.lat, i.lon, *truth_latlon(n)))),
            )
            for n in ("A", "B")
        }
        for issue in by_place.values():
            for status in (IssueStatus.PUBLISHED, IssueStatus.CLOSED):
                services.issues.set_status(issue.id, status)
        remaining = {n: p for n, p in SQUARES_EN.items() if n != "A"}
        third = fly(tmp_path / "f3", remaining, start + timedelta(days=2))
        _, verify = run_folder(services, third, detectors=squares_set, out_dir=tmp_path / "o3")
        outcome = {d.issue_id: str(d.outcome) for d in verify.verification}
        assert outcome[by_place["A"].id] == "verified_fixed"
        assert outcome[by_place["B"].id] == "recurred"
        after = {i.id: i.status for i in services.issues.issues()}
        assert after[by_place["A"].id] is IssueStatus.VERIFIED_FIXED
        assert after[by_place["B"].id] is IssueStatus.RECURRED
    finally:
        services.close()


def test_process_corrects_drone_yaw_flipped_by_180_degrees(
    tmp_path: Path, settings: Settings, squares_set: DetectorSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from xunjian.bench.georef import render_case
    from xunjian.datasets.synth import PoseNoise, World

    truth = render_case(
        "nadir",
        tmp_path / "flight",
        seed=11,
        noise=PoseNoise(flip_reverse_legs=True),
        world=World.generate(11),
        quick=True,
    )
    bad = {
        ft.image.rsplit("/", 1)[-1]
        for ft in truth.frames
        if abs((ft.tags["gimbal_yaw_deg"] - ft.pose["yaw_deg"] + 180) % 360 - 180) > 90
    }
    assert bad
    folder = tmp_path / "photos"
    shutil.copytree(tmp_path / "flight" / "images", folder)
    services = Services.open(settings)
    try:
        _, result = run_folder(services, folder, detectors=squares_set, out_dir=tmp_path / "o")
        assert not result.refinement_reused
        fixed = {k.rsplit("/", 1)[-1] for k, what, _ in result.refinement if what == "yaw +180°"}
        assert fixed == bad
        summary = json.loads((tmp_path / "o" / "summary.json").read_text())
        assert {c["frame"].rsplit("/", 1)[-1] for c in summary["poses_corrected"]} >= bad

        # a re-run reads the refined poses back: refinement itself must not run again
        def no_refining(*args: object, **kwargs: object) -> None:
            raise AssertionError("refinement ran again")

        monkeypatch.setattr("xunjian.inspect.refine.refine_flight", no_refining)
        again = process_batch(services, result.batch_id, detectors=squares_set,
                              out_dir=tmp_path / "o2")  # fmt: skip
        assert again.refinement_reused and again.refinement == result.refinement
        assert [o.lat for o in again.observations] == [o.lat for o in result.observations]
        assert json.loads((tmp_path / "o2" / "summary.json").read_text())["poses_reused"]

        # an unreadable stored copy is ignored, not trusted: refinement runs again
        monkeypatch.undo()
        services.store.put_bytes(refinement_key(result.batch_id), b"{not json")
        third = process_batch(services, result.batch_id, detectors=squares_set,
                              out_dir=tmp_path / "o3")  # fmt: skip
        assert not third.refinement_reused and third.refinement == result.refinement

        # a store that refuses the stored copy costs the saving, not the batch
        from xunjian.errors import StorageError

        put = services.store.put_bytes

        def refusing(key: str, *args: object, **kwargs: object) -> object:
            if key.startswith("refined/"):
                raise StorageError(f"{key}: refused")
            return put(key, *args, **kwargs)  # type: ignore[arg-type]

        services.store.delete(refinement_key(result.batch_id))
        monkeypatch.setattr(services.store, "put_bytes", refusing)
        fourth = process_batch(services, result.batch_id, detectors=squares_set,
                               out_dir=tmp_path / "o4")  # fmt: skip
        assert fourth.refinement == result.refinement
        assert not services.store.exists(refinement_key(result.batch_id))
    finally:
        services.close()
