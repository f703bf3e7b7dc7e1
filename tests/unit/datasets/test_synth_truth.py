"""Truth boxes agree with the camera model and with the rendered pixels.

Every true target projected through the frame's exact pose (the model the pipeline inverts)
must fall inside its truth box — for nadir, oblique and vehicle frames in all yaw quadrants —
and what the renderer drew must lie where the truth says.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import pytest

from xunjian.core import camera
from xunjian.core.records import CameraPose
from xunjian.datasets.synth import geom
from xunjian.datasets.synth import truth as truth_module
from xunjian.datasets.synth.plans import CAMERAS, plan_vehicle_run
from xunjian.datasets.synth.render import Renderer
from xunjian.datasets.synth.truth import frame_truth
from xunjian.datasets.synth.view import View
from xunjian.datasets.synth.world import World


@cache
def world() -> World:
    """One world per module (generating one takes about half a second)."""
    return World.generate(11)


YAWS = (0.0, 90.0, 180.0, 270.0, 37.0)
K = CAMERAS["tiny"].intrinsics()


def drone_poses(pitch: float, height: float) -> list[CameraPose]:
    w = world()
    out = []
    for yaw in YAWS:
        # Stand back from the anchor so that an oblique camera looks at the focus area.
        back = 0.0 if pitch <= -80 else height / np.tan(np.radians(-pitch))
        fwd, _ = geom.heading_vectors(yaw)
        lat, lon = w.to_latlon((-fwd * back)[None])[0]
        out.append(CameraPose(float(lat), float(lon), height, yaw, pitch, 0.0))
    return out


def vehicle_poses() -> list[CameraPose]:
    w = world()
    plans = plan_vehicle_run(w, every_m=20.0, length_m=60.0)
    poses = [p.pose for p in plans]
    # Also the other way along the same road, and looking sideways (yaw quadrants).
    return poses + [
        CameraPose(p.lat, p.lon, p.height_m, (p.yaw_deg + turn) % 360, p.pitch_deg)
        for p in poses[:2]
        for turn in (90.0, 180.0, 270.0)
    ]


CASES = {
    "nadir": drone_poses(-90.0, 30.0),
    "oblique45": drone_poses(-45.0, 40.0),
    "oblique30": drone_poses(-30.0, 50.0),
    "vehicle": vehicle_poses(),
}


@pytest.mark.parametrize("case", CASES)
def test_true_targets_project_into_their_boxes(case: str) -> None:
    w = world()
    seen = 0
    for pose in CASES[case]:
        view = View.of(w, pose, K)
        t_s = 30.0
        for v in frame_truth(w, view, t_s):
            seen += 1
            x0, y0, x1, y1 = v.box
            assert 0 <= x0 < x1 <= K.width and 0 <= y0 < y1 <= K.height, v
            fx0, fy0, fx1, fy1 = v.box_full
            assert fx0 <= x0 and fy0 <= y0 and fx1 >= x1 and fy1 >= y1
            # The target's true position, through the exact pose, lands in its box.
            uv, front = camera.latlon_to_pixel(pose, K, [v.lat, v.lon])
            assert front, v
            u, vv = float(uv[0]), float(uv[1])
            eps = 1e-6
            assert fx0 - eps <= u <= fx1 + eps and fy0 - eps <= vv <= fy1 + eps, (v, u, vv)
            if 0 <= u <= K.width and 0 <= vv <= K.height:
                assert x0 - eps <= u <= x1 + eps and y0 - eps <= vv <= y1 + eps, (v, u, vv)
            assert v.center_px == pytest.approx((u, vv), abs=0.01)  # lat/lon stored to 1e-9°
            # And its latitude/longitude is where the world put it (at that time).
            (ce, cn), _ = w.target(v.id).placement_at(t_s)
            lat, lon = w.to_latlon(np.array([[ce, cn]]))[0]
            assert (v.lat, v.lon) == pytest.approx((lat, lon), abs=1e-8)
    assert seen >= 5, f"{case}: expected targets in view, saw {seen}"


def test_pixel_to_ground_recovers_the_target_position() -> None:
    """The inverse direction, as georeferencing will use it: box centre → ground → target."""
    w = world()
    for pose in CASES["nadir"]:
        view = View.of(w, pose, K)
        for v in frame_truth(w, view, 0.0):
            if v.in_image_fraction < 1.0 or w.target(v.id).is_truck:
                continue
            ll, ok = camera.pixel_to_latlon(pose, K, v.center_px)
            assert ok
            e, n = w.to_en(ll[None])[0]
            t = w.target(v.id)
            assert np.hypot(e - t.center[0], n - t.center[1]) < 1e-4


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 12


@pytest.mark.parametrize("case", ["nadir", "oblique45", "vehicle"])
def test_rendered_targets_lie_in_their_boxes(case: str) -> None:
    w = world()
    bare = w.with_targets(())
    with_targets, without = Renderer(w), Renderer(bare)
    checked = 0
    for pose in CASES[case][:3]:
        view = View.of(w, pose, K)
        a = with_targets.render(pose, K, 30.0)
        b = without.render(pose, K, 30.0)
        diff = _changed(a, b)
        allowed = np.zeros_like(diff)
        for t in w.targets:  # listed or not (mostly outside the image), with their shadows
            hull = truth_module._hull_px(view, t, 30.0)
            if len(hull) < 3:
                continue
            x0, y0 = np.clip(hull.min(axis=0), -1e4, 1e4)
            x1, y1 = np.clip(hull.max(axis=0), -1e4, 1e4)
            m = 0.7 * max(x1 - x0, y1 - y0) + 4  # shadows fall beside what casts them
            allowed[
                max(0, int(y0 - m)) : max(0, int(y1 + m) + 1),
                max(0, int(x0 - m)) : max(0, int(x1 + m) + 1),
            ] = 1
        for v in frame_truth(w, view, 30.0):
            x0, y0, x1, y1 = v.box
            if v.occluded or v.cls.endswith(("longitudinal_crack", "transverse_crack")):
                continue
            if (x1 - x0) * (y1 - y0) < 40:
                continue
            inside = diff[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))]
            assert inside.mean() > 0.15, (case, v.id, v.cls, inside.mean())
            checked += 1
        stray = diff & ~allowed
        assert stray.mean() < 0.003, (case, stray.mean())
    assert checked >= 2


def test_boxes_are_clipped_and_partly_visible_targets_flagged() -> None:
    w = world()
    fractions = []
    for pose in CASES["nadir"] + CASES["oblique45"]:
        for v in frame_truth(w, View.of(w, pose, K), 0.0):
            fractions.append(v.in_image_fraction)
            assert v.in_image_fraction >= 0.25
    assert min(fractions) < 1.0  # some targets cut by the image edge
    assert max(fractions) == 1.0


def test_occlusion_by_a_truck_is_reported() -> None:
    """A ground target right behind a truck, seen from a vehicle camera, is occluded."""
    w = world()
    truck = next(t for t in w.targets if t.is_truck and t.route is None)
    fwd, _right = geom.heading_vectors(truck.heading_deg)
    c = np.array(truck.center)
    pothole = next(t for t in w.targets if t.cls == "pothole")
    behind = replace(pothole, id="T9999", center=tuple(c + fwd * (truck.length_m / 2 + 1.0)))
    cam = c - fwd * (truck.length_m / 2 + 6.0)
    lat, lon = w.to_latlon(cam[None])[0]
    pose = CameraPose(float(lat), float(lon), 1.6, truck.heading_deg, -8.0)
    w2 = w.with_targets((*w.targets, behind))
    big = CAMERAS["small"].intrinsics()  # the pothole, seen edge-on, needs a few pixels
    found = {v.id: v for v in frame_truth(w2, View.of(w2, pose, big), 0.0)}
    assert truck.id in found and not found[truck.id].occluded
    assert found["T9999"].occluded and found["T9999"].visible_fraction < 0.5
    # Without the truck in the way, the same pothole is in plain view.
    w3 = w.with_targets((*[t for t in w.targets if t.id != truck.id], behind))
    again = {v.id: v for v in frame_truth(w3, View.of(w3, pose, big), 0.0)}
    assert not again["T9999"].occluded and again["T9999"].visible_fraction > 0.9
