"""Evidence crops: the best view of each issue, cut from its frame and kept in the object store.

The case system gets one image per issue (``media_url``); the map shows it. A crop keeps some
context around the box and is small (≤ 512 px) so it loads fast anywhere.
"""

from __future__ import annotations

import cv2
import numpy as np

from xunjian.core.issues import Issue
from xunjian.errors import InputError
from xunjian.inspect.decode import decode_image
from xunjian.storage.objectstore import ObjectStore

CROP_MAX_PX = 512
CONTEXT = 1.5  # the crop spans the box plus this many box sizes around it (at least 96 px)


def evidence_key(issue_id: str) -> str:
    return f"evidence/{issue_id}.jpg"


def crop_evidence(pixels: np.ndarray, box: tuple[float, float, float, float]) -> bytes:
    """A JPEG of ``box`` with context from a decoded BGR image (box in its pixels)."""
    height, width = pixels.shape[:2]
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = max((x2 - x1), (y2 - y1), 96 / (1 + 2 * CONTEXT)) * (0.5 + CONTEXT)
    left, top = max(0, int(cx - half)), max(0, int(cy - half))
    right, bottom = min(width, int(cx + half) + 1), min(height, int(cy + half) + 1)
    crop = pixels[top:bottom, left:right].copy()
    # the box, drawn so a reviewer sees exactly what the detector meant
    cv2.rectangle(
        crop,
        (int(x1) - left, int(y1) - top),
        (int(x2) - left, int(y2) - top),
        (0, 0, 255),
        max(1, round(max(crop.shape[:2]) / 256)),
    )
    longest = max(crop.shape[:2])
    if longest > CROP_MAX_PX:
        factor = CROP_MAX_PX / longest
        crop = cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise InputError("evidence crop could not be encoded")
    return bytes(jpeg.tobytes())


def store_evidence(store: ObjectStore, issues: list[Issue], *, max_pixels: int) -> dict[str, str]:
    """Crops and stores each issue's evidence; returns issue id → object key.

    Frames are decoded once however many issues they show.
    """
    by_frame: dict[str, list[Issue]] = {}
    for issue in issues:
        by_frame.setdefault(issue.evidence.frame_key, []).append(issue)
    stored: dict[str, str] = {}
    for frame_key, frame_issues in sorted(by_frame.items()):
        decoded = decode_image(store.get_bytes(frame_key), source=frame_key, max_pixels=max_pixels)
        sx, sy = decoded.scale_to_original
        for issue in frame_issues:
            x1, y1, x2, y2 = issue.evidence.detection.bbox_xyxy
            jpeg = crop_evidence(decoded.pixels, (x1 / sx, y1 / sy, x2 / sx, y2 / sy))
            key = evidence_key(issue.id)
            store.put_bytes(key, jpeg, content_type="image/jpeg", metadata={"issue": issue.id})
            stored[issue.id] = key
    return stored
