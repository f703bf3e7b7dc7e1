"""What the detectors find: three detectors, eight classes (see specs/taxonomy.md).

The table is the one source for class names, which detector owns them, and how far apart two
detections of one real problem may lie. Case-system codes are configuration, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Detector(StrEnum):
    ROAD_DAMAGE = "road_damage"
    ILLEGAL_DUMPING = "illegal_dumping"
    SPOIL_TRUCK = "spoil_truck"


@dataclass(frozen=True, slots=True)
class ClassInfo:
    name: str
    detector: Detector
    zh: str
    en: str
    fuse_radius_m: float
    is_event: bool = False
    event_window_s: float = 0.0


CLASSES: tuple[ClassInfo, ...] = (
    ClassInfo("longitudinal_crack", Detector.ROAD_DAMAGE, "纵向裂缝", "longitudinal crack", 3.0),
    ClassInfo("transverse_crack", Detector.ROAD_DAMAGE, "横向裂缝", "transverse crack", 3.0),
    ClassInfo("alligator_crack", Detector.ROAD_DAMAGE, "龟裂", "alligator crack", 3.0),
    ClassInfo("pothole", Detector.ROAD_DAMAGE, "坑槽", "pothole", 2.0),
    ClassInfo("garbage_pile", Detector.ILLEGAL_DUMPING, "暴露垃圾", "garbage pile", 5.0),
    ClassInfo(
        "construction_waste", Detector.ILLEGAL_DUMPING, "建筑垃圾", "construction waste", 8.0
    ),
    ClassInfo("spoil_truck", Detector.SPOIL_TRUCK, "渣土车", "spoil truck", 20.0, True, 30.0),
    ClassInfo(
        "spoil_truck_uncovered",
        Detector.SPOIL_TRUCK,
        "渣土车未密闭",
        "uncovered spoil truck",
        20.0,
        True,
        30.0,
    ),
)

BY_NAME: dict[str, ClassInfo] = {c.name: c for c in CLASSES}


def class_info(name: str) -> ClassInfo:
    """The taxonomy entry for ``name``; a clear error for an unknown class."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown class {name!r}; expected one of {', '.join(BY_NAME)}") from None


def classes_of(detector: Detector) -> tuple[str, ...]:
    """The class names one detector predicts, in its model's index order."""
    return tuple(c.name for c in CLASSES if c.detector is detector)
