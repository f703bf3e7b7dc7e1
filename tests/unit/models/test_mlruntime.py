"""The CPU torchvision fix and the offline ultralytics import, in a fresh interpreter each.

Each check runs in a subprocess because both fixes must happen before the first import of
torchvision / ultralytics in a process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")


def run_python(code: str, tmp_path: Path) -> dict[str, object]:
    env_code = textwrap.dedent(code)
    result = subprocess.run(
        [sys.executable, "-c", env_code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "XUNJIAN_DATA_DIR": str(tmp_path / "data"),
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_plain_torchvision_import_is_what_we_fix(tmp_path: Path) -> None:
    """Documents the problem: without the fix, either it fails or the wheel is native."""
    out = subprocess.run(
        [sys.executable, "-c", "import torchvision"], capture_output=True, text=True, timeout=300
    )
    probe = run_python(
        """
        import json
        from xunjian.models import mlruntime
        print(json.dumps({"native": mlruntime._native_extension_loads()}))
        """,
        tmp_path,
    )
    if probe["native"]:
        assert out.returncode == 0
    else:
        assert "torchvision::nms" in out.stderr


def test_nms_works_after_the_fix_and_matches_reference(tmp_path: Path) -> None:
    result = run_python(
        """
        import json, torch
        from xunjian.models.mlruntime import import_torchvision, torchvision_ops_state
        tv = import_torchvision()
        boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30],
                              [0, 0, 10, 10.5], [21, 21, 29, 29]], dtype=torch.float32)
        scores = torch.tensor([0.9, 0.8, 0.7, 0.95, 0.1])
        keep = tv.ops.nms(boxes, scores, 0.5).tolist()
        batched = tv.ops.batched_nms(boxes, scores, torch.tensor([0, 1, 0, 0, 0]), 0.5).tolist()
        empty = tv.ops.nms(torch.zeros((0, 4)), torch.zeros((0,)), 0.5).tolist()
        print(json.dumps({"state": torchvision_ops_state(), "keep": keep,
                          "batched": batched, "empty": empty}))
        """,
        tmp_path,
    )
    assert result["state"] in {"native", "fallback"}
    # box 3 (0.95) suppresses boxes 0 and 1; box 2 suppresses box 4 (IoU 0.64)
    assert result["keep"] == [3, 2]
    # class 1 holds box 1 alone, so it survives batched NMS
    assert result["batched"] == [3, 1, 2]
    assert result["empty"] == []


def test_ultralytics_imports_offline_with_fonts_and_no_sync(tmp_path: Path) -> None:
    result = run_python(
        """
        import json, os
        from xunjian.models.mlruntime import import_ultralytics
        ul = import_ultralytics()
        from ultralytics.utils import SETTINGS, ONLINE, USER_CONFIG_DIR
        from ultralytics.utils.checks import check_font
        from PIL import Image, UnidentifiedImageError
        open("not_an_image.jpg", "w").write("hello")
        try:
            Image.open("not_an_image.jpg")
            pillow = "opened"
        except UnidentifiedImageError:
            pillow = "UnidentifiedImageError"
        except Exception as exc:
            pillow = type(exc).__name__
        print(json.dumps({
            "online": ONLINE, "sync": SETTINGS["sync"], "config": str(USER_CONFIG_DIR),
            "font": str(check_font("Arial.ttf")),
            "unicode_font": str(check_font("Arial.Unicode.ttf")),
            "autoinstall": os.environ["YOLO_AUTOINSTALL"],
            "pillow": pillow,
        }))
        """,
        tmp_path,
    )
    config = (tmp_path / "data" / "ultralytics" / "Ultralytics").resolve()
    assert result["online"] is False
    assert result["sync"] is False
    assert result["autoinstall"] == "0"
    # ultralytics' Pillow patch is undone: a bad file stays Pillow's own clear error
    assert result["pillow"] == "UnidentifiedImageError"
    assert Path(str(result["config"])) == config
    assert Path(str(result["font"])) == config / "Arial.ttf"
    assert Path(str(result["unicode_font"])) == config / "Arial.Unicode.ttf"


@pytest.mark.slow
def test_build_predict_export_make_no_network_attempt(tmp_path: Path) -> None:
    """An audit hook records every socket connect / DNS lookup during a real model's life."""
    result = run_python(
        """
        import json, sys
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
        from xunjian.models.mlruntime import import_ultralytics
        ul = import_ultralytics()
        model = ul.YOLO("yolo11n.yaml", task="detect")
        image = np.zeros((160, 160, 3), dtype=np.uint8)
        results = model.predict(image, imgsz=160, verbose=False, device="cpu")
        onnx_path = model.export(format="onnx", imgsz=160, simplify=False, verbose=False)
        onnx_model = ul.YOLO(onnx_path, task="detect")
        onnx_model.predict(image, imgsz=160, verbose=False, device="cpu")
        print(json.dumps({"attempts": attempts, "n": len(results), "hook_works": hook_works,
                          "onnx": str(onnx_path)}))
        """,
        tmp_path,
    )
    assert result["hook_works"] is True
    assert result["n"] == 1
    assert str(result["onnx"]).endswith(".onnx")
    assert result["attempts"] == []
