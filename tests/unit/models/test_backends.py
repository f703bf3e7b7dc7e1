"""Backends: shared pre/post-processing, onnxruntime plumbing, and agreement with ultralytics.

Fast tests use a YOLO-shaped toy ONNX graph; the ``slow`` ones use the tiny trained YOLO11n
(tests/fixtures/models.py) and run ultralytics in a subprocess, so torch never enters the test
process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.fixtures.models import CLASSES, noise, run_isolated, write_toy_onnx
from xunjian.errors import DetectorError
from xunjian.models.backends import (
    PAD_VALUE,
    Letterbox,
    PredictParams,
    box_iou,
    decode_yolo_output,
    letterbox_batch,
    letterbox_geometry,
    nms,
)
from xunjian.models.onnx_backend import OnnxBackend, default_threads


def test_letterbox_geometry_is_ultralytics_arithmetic() -> None:
    # 640×480 into 160: scale 0.25, 160×120 placed 20 px down
    assert letterbox_geometry((480, 640), (160, 160)) == Letterbox((480, 640), (160, 120), 0, 20)
    # small images are scaled up (ultralytics predict: scaleup=True); odd padding rounds as it does
    assert letterbox_geometry((100, 77), (160, 160)) == Letterbox((100, 77), (123, 160), 18, 0)
    assert letterbox_geometry((100, 77), (160, 160), scaleup=False).resized_wh == (77, 100)
    assert letterbox_geometry((1, 3000), (160, 160)).resized_wh == (160, 1)  # at least 1 px


def test_letterbox_batch_pads_114_flips_to_rgb_and_scales() -> None:
    blue = np.zeros((40, 80, 3), np.uint8)
    blue[..., 0] = 255  # BGR blue
    tensor, geometry = letterbox_batch([blue, blue[:, :40]], (64, 64))
    assert tensor.shape == (2, 3, 64, 64) and tensor.dtype == np.float32
    assert tensor.flags.c_contiguous
    g = geometry[0]
    assert (g.resized_wh, g.left, g.top) == ((64, 32), 0, 16)
    assert np.allclose(tensor[0, :, 0, 0], PAD_VALUE / 255.0)
    assert tensor[0, 2, 32, 32] == 1.0 and tensor[0, 0, 32, 32] == 0.0  # RGB: blue is channel 2
    with pytest.raises(ValueError, match="expected a BGR uint8 image"):
        letterbox_batch([np.zeros((8, 8), np.uint8)], (64, 64))


def _head(*anchors: tuple[float, float, float, float, int, float], nc: int = 3) -> np.ndarray:
    out = np.zeros((1, 4 + nc, len(anchors)), np.float32)
    for a, (cx, cy, w, h, cls, score) in enumerate(anchors):
        out[0, :4, a] = (cx, cy, w, h)
        out[0, 4 + cls, a] = score
    return out


def test_decode_thresholds_nms_per_class_and_unletterboxes() -> None:
    output = _head(
        (80, 80, 40, 40, 0, 0.9),
        (82, 80, 40, 40, 0, 0.8),  # same class, IoU 0.9 with the first: suppressed
        (80, 80, 40, 40, 1, 0.85),  # other class at the same place: kept
        (20, 20, 10, 10, 2, 0.1),  # below the confidence threshold
    )
    geometry = [letterbox_geometry((320, 320), (160, 160))]
    (boxes,) = decode_yolo_output(output, geometry, 3, PredictParams())
    assert boxes.cls.tolist() == [0, 1]
    assert np.allclose(boxes.conf, [0.9, 0.85])
    assert np.allclose(boxes.xyxy[0], [120, 120, 200, 200])  # ×2 back to the 320 px image
    (top,) = decode_yolo_output(output, geometry, 3, PredictParams(max_det=1))
    assert top.cls.tolist() == [0]
    (loose,) = decode_yolo_output(output, geometry, 3, PredictParams(iou=0.95))
    assert len(loose) == 3


def test_decode_clips_to_the_image_and_removes_padding() -> None:
    output = _head((80, 50, 200, 40, 0, 0.9))  # runs off the image left, right and top
    geometry = [letterbox_geometry((80, 160), (160, 160))]  # 160×80 placed 40 px down
    (boxes,) = decode_yolo_output(output, geometry, 3, PredictParams())
    assert np.allclose(boxes.xyxy[0], [0, 0, 160, 30])


def test_decode_refuses_a_head_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match=r"expected a YOLO head output of shape \(B, 6, A\)"):
        decode_yolo_output(_head((1, 1, 1, 1, 0, 0.9)), [], 2, PredictParams())


def test_nms_keeps_torchvision_order() -> None:
    boxes = np.array(
        [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5], [21, 21, 29, 29]],
        np.float32,
    )
    scores = np.array([0.9, 0.8, 0.7, 0.95, 0.1], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).tolist() == []


def test_predict_params_say_what_they_expected() -> None:
    with pytest.raises(ValueError, match="conf: expected a value in"):
        PredictParams(conf=1.5)


# ---- onnxruntime backend, on a toy YOLO-shaped graph


@pytest.fixture
def toy_onnx(tmp_path: Path) -> Path:
    return write_toy_onnx(tmp_path / "toy.onnx")


def test_onnx_backend_reads_shape_names_and_threads(toy_onnx: Path) -> None:
    backend = OnnxBackend(toy_onnx, threads=1)
    assert backend.input_size == (64, 64)
    assert backend.num_classes == 3 and backend.class_names == CLASSES
    assert backend.fixed_batch is None
    assert backend._session.get_session_options().intra_op_num_threads == 1
    default = OnnxBackend(toy_onnx)
    assert default._session.get_session_options().intra_op_num_threads == default_threads()
    assert OnnxBackend(toy_onnx, imgsz=96).input_size == (96, 96)


def test_fixed_batch_model_runs_any_number_of_images_in_chunks(tmp_path: Path) -> None:
    dynamic = OnnxBackend(write_toy_onnx(tmp_path / "d.onnx"))
    fixed = OnnxBackend(write_toy_onnx(tmp_path / "f.onnx", batch=2))
    assert fixed.fixed_batch == 2
    images = [noise(64 + 7 * i, 50 + 5 * i, seed=i) for i in range(5)]
    params = PredictParams(conf=0.3)
    for a, b in zip(dynamic.predict(images, params), fixed.predict(images, params), strict=True):
        assert np.allclose(a.xyxy, b.xyxy, atol=1e-3) and np.array_equal(a.cls, b.cls)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"this is not an onnx model at all", "cannot load ONNX model"),
        (None, "cannot load ONNX model"),  # truncated: first half of a real file
    ],
)
def test_corrupt_model_files_are_detector_errors_naming_the_path(
    tmp_path: Path, toy_onnx: Path, content: bytes | None, reason: str
) -> None:
    bad = tmp_path / "bad.onnx"
    data = toy_onnx.read_bytes()
    bad.write_bytes(content if content is not None else data[: len(data) // 2])
    with pytest.raises(DetectorError, match=reason) as caught:
        OnnxBackend(bad)
    assert str(bad) in str(caught.value)


def test_a_graph_that_is_not_a_yolo_head_is_refused(tmp_path: Path) -> None:
    too_few = write_toy_onnx(tmp_path / "nc0.onnx", nc=0, names=None)
    with pytest.raises(DetectorError, match="4 box channels and at least one class"):
        OnnxBackend(too_few)


def test_onnx_path_imports_no_torch(tmp_path: Path) -> None:
    """Load, predict and run the whole detect stage; torch and ultralytics stay out."""
    model = write_toy_onnx(tmp_path / "toy.onnx", imgsz=64)
    result = run_isolated(
        """
        import json, sys
        import numpy as np, cv2
        from xunjian.models.registry import load_detector
        from xunjian.models.detector import DetectorSet
        from xunjian.models.backends import PredictParams
        from xunjian.inspect.detect import detect_frame
        detector = load_detector(sys.argv[1], detector="toy", classes=["a", "b", "c"])
        detector.predict([np.zeros((50, 70, 3), np.uint8)], PredictParams(conf=0.01))
        image = cv2.imencode(".jpg", np.full((300, 400, 3), 90, np.uint8))[1].tobytes()
        found = detect_frame(DetectorSet([detector]), image, source="x.jpg")
        print(json.dumps({"torch": "torch" in sys.modules,
                          "ultralytics": "ultralytics" in sys.modules,
                          "tiles": found.tiles_run}))
        """,
        tmp_path,
        str(model),
    )
    assert result == {"torch": False, "ultralytics": False, "tiles": result["tiles"]}
    assert isinstance(result["tiles"], int) and result["tiles"] > 1


# ---- agreement with ultralytics and zero network, on the tiny trained model

AGREEMENT_SCRIPT = """
import json, sys, time
attempts = []
def hook(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
                 "urllib.Request", "http.client.connect"):
        attempts.append(f"{event} {args!r}"[:200])
sys.addaudithook(hook)
import socket
try:  # prove the hook sees a connect attempt, then start counting afresh
    socket.create_connection(("127.0.0.1", 9), timeout=1)
except OSError:
    pass
hook_works = any(a.startswith("socket.connect") for a in attempts)
attempts.clear()
import numpy as np
from tests.fixtures.models import scene, noise
from xunjian.errors import DetectorError
from xunjian.models.backends import PredictParams
from xunjian.models.onnx_backend import OnnxBackend
from xunjian.models.ultralytics_backend import UltralyticsBackend
pt, onnx, garbage = sys.argv[1:4]
images = [scene(90_000 + i)[0] for i in range(8)]
wide = np.concatenate([scene(90_100)[0], scene(90_101)[0]], axis=1)  # 320×160
images += [wide, wide[:, :233], images[0][:100, :77], noise(50, 40)]
backends = {"ort": OnnxBackend(onnx), "ul_onnx": UltralyticsBackend(onnx),
            "ul_pt": UltralyticsBackend(pt)}
params = PredictParams()
out = {name: [[b.xyxy.tolist(), b.conf.tolist(), b.cls.tolist()]
              for b in backend.predict(images, params)] for name, backend in backends.items()}
errors = {}
for name, path in (("garbage_pt", garbage), ("missing", garbage + ".nope")):
    try:
        UltralyticsBackend(path)
    except DetectorError as exc:
        errors[name] = str(exc)
sizes = {name: list(b.input_size) for name, b in backends.items()}
print(json.dumps({"boxes": out, "errors": errors, "attempts": attempts,
                  "hook_works": hook_works, "sizes": sizes}))
"""


@pytest.fixture(scope="module")
def backend_run(tiny_yolo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    home = tmp_path_factory.mktemp("agreement")
    garbage = home / "garbage.pt"
    garbage.write_bytes(b"\x80\x04not a checkpoint" * 10)
    return run_isolated(
        AGREEMENT_SCRIPT, home, str(tiny_yolo.pt), str(tiny_yolo.onnx), str(garbage)
    )


def _agreement(a: list[Any], b: list[Any]) -> tuple[int, float, float]:
    """(boxes, min IoU, max |Δconf|) matching every box of ``a`` to ``b``'s same class."""
    n, worst_iou, worst_conf = 0, 1.0, 0.0
    for (xa, ca, ka), (xb, cb, kb) in zip(a, b, strict=True):
        assert len(xa) == len(xb)
        if not xa:
            continue
        iou = box_iou(np.array(xa), np.array(xb))
        iou[np.array(ka)[:, None] != np.array(kb)[None, :]] = 0.0
        best = iou.argmax(axis=1)
        n += len(xa)
        worst_iou = min(worst_iou, float(iou.max(axis=1).min()))
        worst_conf = max(worst_conf, float(np.abs(np.array(ca) - np.array(cb)[best]).max()))
    return n, worst_iou, worst_conf


@pytest.mark.slow
def test_onnxruntime_and_ultralytics_give_the_same_boxes(backend_run: dict[str, Any]) -> None:
    boxes = backend_run["boxes"]
    assert backend_run["sizes"] == {"ort": [160, 160], "ul_onnx": [160, 160], "ul_pt": [160, 160]}
    n, iou, conf = _agreement(boxes["ort"], boxes["ul_onnx"])
    assert n >= 10, "the tiny model should find the shapes it was trained on"
    assert iou > 0.999 and conf < 1e-4  # same .onnx: identical up to float noise
    n_pt, iou_pt, conf_pt = _agreement(boxes["ort"], boxes["ul_pt"])
    assert n_pt == n
    assert iou_pt >= 0.9 and conf_pt < 0.02


@pytest.mark.slow
def test_ultralytics_backend_errors_name_the_file(backend_run: dict[str, Any]) -> None:
    errors = backend_run["errors"]
    assert "garbage.pt: cannot load model with ultralytics" in errors["garbage_pt"]
    assert errors["missing"].endswith("garbage.pt.nope: model file not found")


@pytest.mark.slow
def test_both_backends_load_and_predict_without_a_network_attempt(
    backend_run: dict[str, Any],
) -> None:
    assert backend_run["hook_works"] is True
    assert backend_run["attempts"] == []


def test_agreement_helper_catches_a_moved_box() -> None:
    a = [[[[0, 0, 10, 10]], [0.9], [0]]]
    b = [[[[0, 0, 10, 12]], [0.9], [0]]]
    assert _agreement(a, b)[1] < 0.9
    assert json.dumps(a)  # plain JSON, as the subprocess sends it
