"""Frames as GeoJSON: each frame's ground footprint polygon and its pose, for maps and coverage."""

from __future__ import annotations

from typing import Any

from xunjian.core.camera import footprint_latlon
from xunjian.core.records import Frame

DRONE_RANGE_FACTOR = 4.0  # usable range of a drone frame, in multiples of its height
VEHICLE_RANGE_M = 60.0


def max_range_m(frame: Frame) -> float:
    assert frame.pose is not None
    if frame.platform == "vehicle":
        return VEHICLE_RANGE_M
    return max(DRONE_RANGE_FACTOR * frame.pose.height_m, 1.0)


def frame_feature(frame: Frame) -> dict[str, Any]:
    """A GeoJSON Feature: the footprint polygon, or the camera point, or no geometry."""
    properties: dict[str, Any] = {
        "key": frame.key,
        "batch_id": frame.batch_id,
        "platform": str(frame.platform),
        "width": frame.width,
        "height": frame.height,
        "captured_at": frame.captured_at.isoformat() if frame.captured_at else None,
        "camera_model": frame.camera_model,
        "problems": list(frame.problems),
    }
    geometry: dict[str, Any] | None = None
    if frame.pose is not None:
        pose = frame.pose
        properties.update(
            lat=pose.lat,
            lon=pose.lon,
            height_m=pose.height_m,
            yaw_deg=pose.yaw_deg,
            pitch_deg=pose.pitch_deg,
            sigma_xy_m=pose.sigma_xy_m,
        )
        geometry = {"type": "Point", "coordinates": [pose.lon, pose.lat]}
        if frame.intrinsics is not None:
            ring = footprint_latlon(pose, frame.intrinsics, max_range_m(frame))
            if len(ring) >= 3:
                coordinates = [[float(lon), float(lat)] for lat, lon in ring]
                coordinates.append(coordinates[0])
                geometry = {"type": "Polygon", "coordinates": [coordinates]}
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def frames_geojson(frames: list[Frame]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [frame_feature(f) for f in frames]}
