"""What stands on the ground — buildings and trucks — as textured boxes, drawn with a z-buffer.

Every face is a planar polygon with a texture mapped by a homography (a roof takes its look
from the ground tiles, a truck's top from its sprite, walls from ``facades``). Faces are
clipped at the camera's near plane, so a vehicle camera driving past a building is fine. The
same pass fills an id buffer — which object each pixel shows — from which the ground truth
works out occlusion.

May import: numpy, OpenCV, the standard library and sibling modules of ``synth``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from xunjian.datasets.synth import facades, geom, shapes
from xunjian.datasets.synth.geom import F64
from xunjian.datasets.synth.ground import GroundTexture, shadow_offset, sun_vector, texel_of
from xunjian.datasets.synth.textures import F32, U8
from xunjian.datasets.synth.view import View, clip_near
from xunjian.datasets.synth.world import Building, Target, World

_SHIFT = 4


@dataclass
class Face:
    """A planar polygon (M, 3) in world ENU; texture pixel (x, y) lies at origin + x·u + y·v."""

    poly: F64
    texture: U8 | None = None
    origin: F64 | None = None
    u: F64 | None = None
    v: F64 | None = None
    shade: float = 1.0


@dataclass
class Solid:
    """One standing object: its faces, its bounding corners (8, 3) and whose it is."""

    owner: str
    faces: list[Face]
    corners: F64


def _prism(foot: F64, z0: float, z1: float) -> F64:
    return np.vstack([np.column_stack([foot, np.full(len(foot), z)]) for z in (z0, z1)])


def _wall_shade(normal_en: F64, sun: F64, elevation_deg: float) -> float:
    lit = max(0.0, float(normal_en @ sun)) * math.cos(math.radians(elevation_deg))
    return 0.58 + 0.55 * lit


def _walls(
    view: View,
    foot: F64,
    z0: float,
    z1: float,
    textures: list[U8] | None,
    sun: F64,
    elev: float,
) -> list[Face]:
    """The walls facing the camera; ``textures`` (one per edge, cycled) or None (geometry)."""
    cam_en = np.array(view.camera_en)
    faces = []
    for i in range(len(foot)):
        p, q = foot[i], foot[(i + 1) % len(foot)]
        edge = q - p
        length = float(np.hypot(*edge))
        normal = np.array([edge[1], -edge[0]]) / max(length, 1e-9)  # outward for CCW
        if normal @ (cam_en - p) <= 0.0:  # faces away from the camera
            continue
        poly = np.array([[*p, z0], [*q, z0], [*q, z1], [*p, z1]])
        if textures is None:
            faces.append(Face(poly=poly))
            continue
        tex = textures[i % len(textures)]
        along = edge / length
        tw = length / tex.shape[1]
        th = (z1 - z0) / tex.shape[0]
        faces.append(
            Face(
                poly=poly,
                texture=tex,
                origin=np.array([*(p + along * 0.5 * tw), z1 - 0.5 * th]),
                u=np.array([*(along * tw), 0.0]),
                v=np.array([0.0, 0.0, -th]),
                shade=_wall_shade(normal, sun, elev),
            )
        )
    return faces


def _level_for(view: View, point: F64) -> int:
    dist = float(np.linalg.norm(view.to_camera(point[None])[0]))
    gsd = view.gsd_at(max(dist, 0.1))
    return int(np.clip(math.floor(math.log2(max(gsd / texel_of(0), 1.0))), 0, 8))


def _sun(ground: GroundTexture | None) -> tuple[F64, float]:
    if ground is None:  # geometry only: lighting does not matter
        return np.zeros(2), 90.0
    return sun_vector(ground.world), ground.world.sun_elevation_deg


def building_solid(b: Building, view: View, ground: GroundTexture | None) -> Solid:
    """A building as a box; ``ground`` None gives geometry only (no textures)."""
    foot = geom.as_points(b.footprint)
    sun, elev = _sun(ground)
    walls = (
        None
        if ground is None
        else [
            facades.facade(
                b.facade,
                max(1, round(float(np.hypot(*(foot[(i + 1) % 4] - foot[i]))))),
                max(3, round(b.height_m)),
            )
            for i in range(len(foot))
        ]
    )
    faces = _walls(view, foot, 0.0, b.height_m, walls, sun, elev)
    roof = np.column_stack([foot, np.full(len(foot), b.height_m)])
    if ground is None:
        if view.pose.height_m > b.height_m:
            faces.append(Face(poly=roof))
        return Solid(b.id, faces, _prism(foot, 0.0, b.height_m))
    if view.pose.height_m > b.height_m and _in_image(view, roof):
        level = _level_for(view, np.array([*foot.mean(axis=0), b.height_m]))
        e0, n0, e1, n1 = geom.bbox(foot)
        mosaic, m = ground.mosaic(level, e0, n0, e1, n1)
        t = texel_of(level)
        inv = np.linalg.inv(m)
        origin = inv @ np.array([0.0, 0.0, 1.0])
        faces.append(
            Face(
                poly=roof,
                texture=mosaic,
                origin=np.array([origin[0], origin[1], b.height_m]),
                u=np.array([t, 0.0, 0.0]),
                v=np.array([0.0, -t, 0.0]),
            )
        )
    return Solid(b.id, faces, _prism(foot, 0.0, b.height_m))


def _in_image(view: View, poly: F64) -> bool:
    uv = view.project_polygon(poly)
    if len(uv) < 3:
        return False
    return bool(
        uv[:, 0].max() >= 0
        and uv[:, 0].min() <= view.k.width
        and uv[:, 1].max() >= 0
        and uv[:, 1].min() <= view.k.height
    )


def truck_solid(target: Target, t_s: float, view: View, ground: GroundTexture | None) -> Solid:
    """A truck as two boxes (cab, loaded body); ``ground`` None gives geometry only."""
    center, heading = target.placement_at(t_s)
    c = np.array(center)
    fwd, right = geom.heading_vectors(heading)
    half_l, half_w = target.length_m / 2, target.width_m / 2
    cab_len = shapes.TRUCK_CAB_M
    body_len = target.length_m - cab_len - 0.3
    sun, elev = _sun(ground)
    h_cab, h_body = shapes.TRUCK_CAB_HEIGHT_M, target.height_m

    def foot(a0: float, a1: float, w: float) -> F64:
        local = np.array([[a0, -w], [a0, w], [a1, w], [a1, -w]])
        return geom.local_to_world(local, c, heading)

    body_tex: list[U8] | None = None
    cab_tex: list[U8] | None = None
    if ground is not None:
        paint = _paint(target.cls, target.length_m, target.width_m, target.look_seed)
        width, body_h = round(target.width_m, 1), round(h_body, 1)
        body_side = facades.truck_face("body_side", round(body_len, 1), body_h, paint)
        plain = facades.truck_face("plain", width, body_h, paint)
        cab_side = facades.truck_face("cab_side", cab_len, h_cab, paint)
        # CCW footprint edges: back, right side, front, left side (the left mirrored).
        body_tex = [facades.truck_face("body_back", width, body_h, paint), body_side, plain,
                    body_side[:, ::-1]]  # fmt: skip
        cab_tex = [plain, cab_side, facades.truck_face("cab_front", width, h_cab, paint),
                   cab_side[:, ::-1]]  # fmt: skip
    body = foot(-half_l, -half_l + body_len, half_w)
    cab = foot(half_l - cab_len, half_l, half_w * 0.96)
    faces = _walls(view, body, 0.0, h_body, body_tex, sun, elev)
    faces += _walls(view, cab, 0.0, h_cab, cab_tex, sun, elev)
    outline = foot(-half_l, half_l, half_w)
    if ground is None:
        faces += [
            Face(poly=np.column_stack([top, np.full(4, z)]))
            for top, z in ((body, h_body), (cab, h_cab))
        ]
        return Solid(target.id, faces, _prism(outline, 0.0, h_body))
    level = _level_for(view, np.array([*c, h_body]))
    spr = ground.sprite(target, level)
    rgb = ground.sprite_rgb(target, level)
    ts = spr.texel
    origin_en = c + fwd * (spr.a0 + 0.5 * ts) + right * (spr.b0 + 0.5 * ts)
    for top, z in ((body, h_body), (cab, h_cab)):
        if view.pose.height_m > z:
            faces.append(
                Face(
                    poly=np.column_stack([top, np.full(4, z)]),
                    texture=rgb,
                    origin=np.array([*origin_en, z]),
                    u=np.array([*(fwd * ts), 0.0]),
                    v=np.array([*(right * ts), 0.0]),
                )
            )
    return Solid(target.id, faces, _prism(outline, 0.0, h_body))


def in_view(
    world: World,
    view: View,
    t_s: float,
    footprint: F64,
    max_range_m: float,
    ground: GroundTexture | None,
) -> list[Solid]:
    """Buildings and trucks near the frame's ground ``footprint`` (world E, N), as solids."""
    if len(footprint) == 0:
        return []
    # Tall things lean outwards in the image: widen the search by what can lean in.
    e0, n0, e1, n1 = geom.bbox(footprint)
    margin = 50.0
    out: list[Solid] = []
    for b in world.buildings:
        c = np.mean(b.footprint, axis=0)
        near = e0 - margin <= c[0] <= e1 + margin and n0 - margin <= c[1] <= n1 + margin
        if near and view.ground_distance(c[None])[0] <= max_range_m + 40.0:
            out.append(building_solid(b, view, ground))
    for t in world.targets:
        if t.is_truck:
            (ce, cn), _ = t.placement_at(t_s)
            if e0 - 15 <= ce <= e1 + 15 and n0 - 15 <= cn <= n1 + 15:
                out.append(truck_solid(t, t_s, view, ground))
    return out


@cache
def _paint(cls: str, length_m: float, width_m: float, look_seed: int) -> tuple[int, int, int]:
    return shapes.build(cls, length_m, width_m, look_seed).blobs[0].color


def truck_shadow(target: Target, t_s: float, ground: GroundTexture) -> F64:
    """The ground polygon (E, N) of a truck's shadow at ``t_s``."""
    foot = target.outline_at(t_s)
    return geom.convex_hull(np.vstack([foot, foot + shadow_offset(ground.world, target.height_m)]))


def _cam_vec(view: View, vec: F64) -> F64:
    en = view.world_to_cam_en[:2, :2] @ vec[:2]
    out: F64 = view.rot @ np.array([en[0], en[1], vec[2]])
    return out


def draw(view: View, solids: list[Solid], zbuf: F32, idbuf: np.ndarray, img: U8 | None) -> None:
    """Draws ``solids`` into ``img`` (may be None: geometry only) where nearer than ``zbuf``.

    ``idbuf`` receives the index of the solid shown at each pixel.
    """
    k = view.k
    h_img, w_img = zbuf.shape
    for index, solid in enumerate(solids):
        for face in solid.faces:
            cam = clip_near(view.to_camera(face.poly))
            if len(cam) < 3:
                continue
            uv = view.project_camera(cam) - 0.5  # continuous → OpenCV pixel-centre coordinates
            x0, y0 = np.floor(uv.min(axis=0)).astype(int)
            x1, y1 = np.ceil(uv.max(axis=0)).astype(int) + 1
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w_img), min(y1, h_img)
            if x1 <= x0 or y1 <= y0:
                continue
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(
                mask,
                [np.round((uv - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)],
                1,
                cv2.LINE_8,
                _SHIFT,
            )
            normal = np.cross(cam[1] - cam[0], cam[2] - cam[0])
            normal /= max(float(np.linalg.norm(normal)), 1e-12)
            dist = float(normal @ cam[0])
            xs = ((np.arange(x0, x1, dtype=np.float32) + 0.5) - k.cx) / k.fx
            ys = ((np.arange(y0, y1, dtype=np.float32) + 0.5) - k.cy) / k.fy
            denom = normal[0] * xs[None, :] + normal[1] * ys[:, None] + normal[2]
            with np.errstate(divide="ignore", invalid="ignore"):
                depth = (dist / denom).astype(np.float32)
            zr = zbuf[y0:y1, x0:x1]
            vis = (mask > 0) & (depth > 0) & (depth < zr)
            if not vis.any():
                continue
            np.copyto(zr, depth, where=vis)  # masked copies: no gather and scatter
            np.copyto(idbuf[y0:y1, x0:x1], index, where=vis)
            if img is None or face.texture is None:
                continue
            assert face.origin is not None and face.u is not None and face.v is not None
            cols = np.column_stack(
                [
                    _cam_vec(view, face.u),
                    _cam_vec(view, face.v),
                    view.to_camera(face.origin[None])[0],
                ]
            )
            hom = view.kmat @ cols
            shift = np.array([[1.0, 0.0, -x0 - 0.5], [0.0, 1.0, -y0 - 0.5], [0.0, 0.0, 1.0]])
            part = cv2.warpPerspective(
                face.texture,
                shift @ hom,
                (x1 - x0, y1 - y0),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            if face.shade != 1.0:  # one saturating OpenCV pass; −½ rounds down, as before
                part = cv2.convertScaleAbs(part, alpha=face.shade, beta=-0.5)
            np.copyto(img[y0:y1, x0:x1], part, where=vis[..., None])
