"""The detect stage and ``xunjian detect``: one decode, tiles, original pixels, skipped sky."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from tests.fixtures.badinput import truncated
from tests.fixtures.models import CLASSES, TinyModel, draw_shape, noise, write_toy_onnx
from xunjian.cli.app import app
from xunjian.core.records import CameraIntrinsics, CameraPose, Frame, Platform
from xunjian.inspect.detect import (
    DetectOptions,
    detect_frame,
    frame_gsd_m,
    scale_for_targets,
    usable_tiles,
)
from xunjian.models import registry
from xunjian.models.backends import box_iou
from xunjian.models.detector import DetectorSet
from xunjian.models.tiling import TileConfig


def frame_of(width: int, height: int, *, pitch: float, height_m: float, f: float) -> Frame:
    return Frame(
        batch_id="b",
        key="b/frame.jpg",
        sha256="0" * 64,
        width=width,
        height=height,
        platform=Platform.VEHICLE if pitch > -45 else Platform.DRONE,
        intrinsics=CameraIntrinsics(width, height, f, f, width / 2, height / 2),
        pose=CameraPose(29.56, 106.55, height_m, yaw_deg=0.0, pitch_deg=pitch),
    )


def encode(image: np.ndarray, ext: str = ".png") -> bytes:
    ok, data = cv2.imencode(ext, image, [cv2.IMWRITE_JPEG_QUALITY, 98] if ext == ".jpg" else [])
    assert ok
    return data.tobytes()


def test_boxes_come_back_in_original_pixels_from_a_reduced_decode(blob_set: DetectorSet) -> None:
    image = noise(1280, 960, seed=1)
    truth = [draw_shape(image, 0, 400, 300, 80), draw_shape(image, 2, 1000, 700, 120)]
    options = DetectOptions(working_scale=0.5, tiling=TileConfig(tile=160))
    result = detect_frame(blob_set, encode(image, ".jpg"), source="big.jpg", options=options)
    assert result.decoded_size == (640, 480)
    assert (result.width, result.height) == (1280, 960)
    assert result.tiles_run > 1 and result.tiles_skipped == 0
    boxes = np.array([d.bbox_xyxy for d in result.detections])
    assert len(boxes) == 2
    assert (box_iou(boxes, np.array(truth, float)).max(axis=0) > 0.9).all()
    assert {d.frame_key for d in result.detections} == {"big.jpg"}
    assert {d.class_name for d in result.detections} == {"square", "triangle"}


def test_a_frame_detected_whole_is_decoded_no_larger_than_the_network_input() -> None:
    from tests.fixtures.models import BlobBackend
    from xunjian.models.detector import Detector

    image = noise(1280, 960, seed=3)
    truth = [draw_shape(image, 0, 400, 300, 160), draw_shape(image, 2, 1000, 700, 200)]
    detectors = DetectorSet([Detector("toy", BlobBackend((320, 320)), CLASSES, "toy@test")])
    whole = DetectOptions(tiling=TileConfig(mode="full"))
    result = detect_frame(detectors, encode(image, ".jpg"), source="big.jpg", options=whole)
    assert result.decoded_size == (320, 240)  # libjpeg at 1/4, not decoded whole
    assert (result.width, result.height) == (1280, 960)
    boxes = np.array([d.bbox_xyxy for d in result.detections])
    assert len(boxes) == 2
    assert (box_iou(boxes, np.array(truth, float)).max(axis=0) > 0.85).all()
    tiled = detect_frame(detectors, encode(image, ".jpg"), options=DetectOptions())
    assert tiled.decoded_size == (1280, 960) and tiled.tiles_run > 1  # tiles need every pixel


def test_tiles_above_the_horizon_and_beyond_range_are_skipped(blob_set: DetectorSet) -> None:
    image = noise(640, 480, seed=2)
    sky = draw_shape(image, 0, 300, 40, 40)  # high above the horizon (row ≈ 205)
    road = draw_shape(image, 1, 300, 400, 40)
    vehicle = frame_of(640, 480, pitch=-5.0, height_m=2.0, f=400.0)
    options = DetectOptions(tiling=TileConfig(tile=160, mode="tiles"))
    skipping = detect_frame(blob_set, encode(image), frame=vehicle, options=options)
    assert skipping.tiles_skipped == 5  # the top row of tiles sees only sky and far distance
    (found,) = skipping.detections
    assert found.bbox_xyxy == pytest.approx(road, abs=1.5)
    assert found.frame_key == "b/frame.jpg"
    everything = detect_frame(blob_set, encode(image), options=options)
    assert everything.tiles_skipped == 0 and len(everything.detections) == 2
    assert any(d.bbox_xyxy == pytest.approx(sky, abs=1.5) for d in everything.detections)


def test_nadir_frames_skip_nothing_and_no_pose_means_no_skipping() -> None:
    rects = [(0, 0, 160, 160), (480, 320, 640, 480)]
    nadir = frame_of(640, 480, pitch=-90.0, height_m=60.0, f=500.0)
    assert usable_tiles(rects, nadir, (1.0, 1.0)).all()
    bare = Frame(batch_id="b", key="k", sha256="", width=640, height=480)
    assert usable_tiles(rects, bare, (1.0, 1.0)).all()
    looking_up = frame_of(640, 480, pitch=20.0, height_m=2.0, f=400.0)
    assert not usable_tiles(rects[:1], looking_up, (1.0, 1.0)).any()


def test_working_scale_from_gsd_and_target_size(blob_set: DetectorSet) -> None:
    assert scale_for_targets(0.005, 0.3) == pytest.approx(0.4)  # 30 cm pothole at 5 mm/px
    assert scale_for_targets(0.02, 0.3) == 1.0
    nadir = frame_of(1280, 960, pitch=-90.0, height_m=60.0, f=3000.0)
    assert frame_gsd_m(nadir) == pytest.approx(0.02)
    assert frame_gsd_m(frame_of(1280, 960, pitch=-10.0, height_m=2.0, f=900.0)) is None
    options = DetectOptions(target_gsd_m=0.04)
    result = detect_frame(blob_set, encode(noise(1280, 960), ".jpg"), frame=nadir, options=options)
    assert result.decoded_size == (640, 480)


def test_near_nadir_frames_run_at_the_models_own_ground_sampling() -> None:
    from tests.fixtures.models import BlobBackend
    from xunjian.models.detector import Detector

    def toy(name: str, gsd: float | None) -> Detector:
        return Detector(name, BlobBackend(), CLASSES, f"{name}@test", gsd)

    nadir = frame_of(1280, 960, pitch=-90.0, height_m=60.0, f=3000.0)  # 0.02 m/px
    oblique = frame_of(1280, 960, pitch=-10.0, height_m=2.0, f=900.0)
    image = encode(noise(1280, 960), ".jpg")
    trained_at_004 = DetectorSet([toy("a", 0.04), toy("b", 0.08)])
    assert trained_at_004.gsd_m == 0.04  # the finest any of them needs
    assert detect_frame(trained_at_004, image, frame=nadir).decoded_size == (640, 480)
    assert detect_frame(trained_at_004, image, frame=oblique).decoded_size == (1280, 960)
    assert detect_frame(trained_at_004, image).decoded_size == (1280, 960)  # no pose
    # an explicit target or working scale wins; the models' own can be switched off
    explicit = DetectOptions(target_gsd_m=0.08)
    assert detect_frame(trained_at_004, image, frame=nadir, options=explicit).decoded_size == (
        320,
        240,
    )
    off = DetectOptions(use_model_gsd=False)
    assert detect_frame(trained_at_004, image, frame=nadir, options=off).decoded_size == (1280, 960)
    # a set with one detector that does not say runs at full resolution
    unknown = DetectorSet([toy("a", 0.04), toy("b", None)])
    assert unknown.gsd_m is None
    assert detect_frame(unknown, image, frame=nadir).decoded_size == (1280, 960)


def test_a_cards_gsd_reaches_the_loaded_detector(tmp_path: Path) -> None:
    from xunjian.errors import DetectorError

    card = tmp_path / "card.json"
    card.write_text(json.dumps({"detector": "road_damage", "gsd_m": 0.08}))
    assert registry.read_card(card).gsd_m == 0.08
    for bad in (0, -1, "0.08", True, 50):
        card.write_text(json.dumps({"detector": "road_damage", "gsd_m": bad}))
        with pytest.raises(DetectorError, match="gsd_m"):
            registry.read_card(card)
    shipped = registry.load_default_set(["road_damage"])
    assert (
        shipped.gsd_m
        == registry.read_card(
            registry.shipped_model_path("road_damage").with_name("card.json")
        ).gsd_m
    )


def test_a_corrupt_frame_is_an_input_error_naming_it(tmp_path: Path, blob_set: DetectorSet) -> None:
    from xunjian.errors import InputError

    path = truncated(tmp_path)
    with pytest.raises(InputError, match=re.escape(str(path))):
        detect_frame(blob_set, path)


# ---- xunjian detect


def _images(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    good = noise(300, 200)
    draw_shape(good, 0, 50, 50, 40)
    paths = [folder / "a.png", truncated(folder), folder / "c.jpg"]
    paths[0].write_bytes(encode(good))
    paths[2].write_bytes(encode(noise(120, 90), ".jpg"))
    return paths


def test_cli_json_lines_one_object_per_image_and_errors_go_on(tmp_path: Path) -> None:
    model = write_toy_onnx(tmp_path / "toy.onnx", imgsz=64)
    paths = _images(tmp_path / "images")
    args = ["detect", *map(str, paths), "--json", "--model", str(model), "--detector", "toy"]
    result = CliRunner().invoke(app, [*args, "--classes", ",".join(CLASSES), "--conf", "0.5"])
    assert result.exit_code == 1, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line["image"] for line in lines] == [str(p) for p in paths]
    first, broken, last = lines
    assert (first["width"], first["height"], last["width"], last["height"]) == (300, 200, 120, 90)
    assert set(first) == {"image", "width", "height", "detections"}
    for detection in first["detections"] + last["detections"]:
        assert set(detection) == {"detector", "class", "confidence", "bbox_xyxy"}
        assert detection["detector"] == "toy" and detection["class"] in CLASSES
    assert "truncated" in broken["error"] and str(paths[1]) in broken["error"]


def test_cli_says_clearly_when_no_model_is_shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path / "weights")
    result = CliRunner().invoke(app, ["detect", str(tmp_path / "x.jpg"), "--json"])
    assert result.exit_code == 2
    assert "no shipped model for detector road_damage" in result.output
    assert "Traceback" not in result.output


def test_cli_names_an_unreadable_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    result = CliRunner().invoke(app, ["detect", "x.jpg", "--model", str(bad), "--detector", "x"])
    assert result.exit_code == 2
    assert f"{bad}: cannot load ONNX model" in result.output.replace("\n", "")


@pytest.mark.slow
def test_the_tiny_model_finds_a_target_cut_by_tile_edges_once(
    tiny_yolo: TinyModel, tmp_path: Path
) -> None:
    image = noise(480, 480, seed=7)
    truth = [
        draw_shape(image, 0, 100, 40, 50),  # straddles x = 128, inside the first tile row
        draw_shape(image, 1, 300, 300, 44),
        draw_shape(image, 2, 110, 240, 48),  # crosses x = 128 and y = 256
    ]
    path = tmp_path / "scene.png"
    path.write_bytes(encode(image))
    args = ["detect", str(path), "--json", "--model", str(tiny_yolo.onnx), "--detector", "toy"]
    args += ["--classes", ",".join(CLASSES), "--tile", "160", "--mode", "tiles"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    found = line["detections"]
    boxes = np.array([d["bbox_xyxy"] for d in found])
    iou = box_iou(boxes, np.array(truth, float))
    assert (iou.max(axis=0) > 0.7).all(), found
    for k, cls in enumerate(("square", "disc", "triangle")):
        matches = [d for d, row in zip(found, iou, strict=True) if row[k] > 0.3]
        assert [d["class"] for d in matches] == [cls], found  # exactly one box per target


def test_cli_reads_a_photos_pose_so_the_stage_skips_its_sky(
    tmp_path: Path, blob_set: DetectorSet
) -> None:
    from tests.fixtures.badinput import clean_tags
    from xunjian.cli.detect import _frame_of
    from xunjian.datasets.flightgen import encode_jpeg

    image = noise(640, 480, seed=4)
    draw_shape(image, 0, 300, 30, 40)  # sky
    road = draw_shape(image, 0, 300, 400, 40)
    path = tmp_path / "DJI_0001.JPG"
    path.write_bytes(encode_jpeg(image, clean_tags(gimbal_pitch_deg=-5.0, rel_alt_m=2.0)))
    frame = _frame_of(path, 10**9)
    assert frame is not None and frame.pose is not None and frame.intrinsics is not None
    options = DetectOptions(tiling=TileConfig(tile=160, mode="tiles"))
    result = detect_frame(blob_set, path, frame=frame, options=options)
    assert result.tiles_skipped > 0
    assert [d.bbox_xyxy for d in result.detections] == [pytest.approx(road, abs=2)]
    assert _frame_of(tmp_path / "missing.jpg", 10**9) is None
