"""``report.html``: one self-contained page — a map of footprints and issues, and the evidence.

No external tiles, scripts or fonts: the map is an inline SVG in local metres around the
batch, evidence thumbnails are inlined as data URIs, so the file opens anywhere, offline.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from xunjian.core.geo import latlon_to_en
from xunjian.core.issues import Issue
from xunjian.core.taxonomy import class_info

COLOURS = {
    "longitudinal_crack": "#e6194b",
    "transverse_crack": "#f58231",
    "alligator_crack": "#ffe119",
    "pothole": "#911eb4",
    "garbage_pile": "#3cb44b",
    "construction_waste": "#4363d8",
    "spoil_truck": "#000075",
    "spoil_truck_uncovered": "#f032e6",
}
MAP_PX = 760


def _ring(feature: Mapping[str, Any]) -> list[tuple[float, float]]:
    geometry = feature.get("geometry") or {}
    if geometry.get("type") != "Polygon":
        return []
    return [(float(lat), float(lon)) for lon, lat in geometry["coordinates"][0]]


def _svg(footprints: Mapping[str, Any], issues: Sequence[Issue]) -> str:
    rings = [r for r in (_ring(f) for f in footprints.get("features", [])) if r]
    points = [p for r in rings for p in r] + [(i.lat, i.lon) for i in issues]
    if not points:
        return "<p>nothing to map</p>"
    lat0 = sum(p[0] for p in points) / len(points)
    lon0 = sum(p[1] for p in points) / len(points)

    def en(lat: float, lon: float) -> tuple[float, float]:
        e, n = latlon_to_en(lat, lon, lat0, lon0)
        return float(e), float(n)

    xy = [en(*p) for p in points]
    min_e, max_e = min(p[0] for p in xy), max(p[0] for p in xy)
    min_n, max_n = min(p[1] for p in xy), max(p[1] for p in xy)
    span = max(max_e - min_e, max_n - min_n, 1.0) * 1.05
    scale = MAP_PX / span

    def px(lat: float, lon: float) -> tuple[float, float]:
        e, n = en(lat, lon)
        return (e - min_e) * scale + 10, (max_n - n) * scale + 10

    parts = [
        f'<svg viewBox="0 0 {MAP_PX + 20} {MAP_PX + 20}" width="{MAP_PX + 20}" '
        'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="map">',
        f'<rect width="{MAP_PX + 20}" height="{MAP_PX + 20}" fill="#f4f4f0"/>',
    ]
    for ring in rings:
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in (px(*p) for p in ring))
        parts.append(
            f'<polygon points="{coords}" fill="#88a" fill-opacity="0.08" stroke="#668" '
            'stroke-opacity="0.5" stroke-width="0.7"/>'
        )
    for issue in issues:
        x, y = px(issue.lat, issue.lon)
        radius = max(4.0, issue.sigma_m * scale)
        label = html.escape(f"{class_info(issue.class_name).en} · {issue.confidence:.2f}")
        parts.append(
            f'<a href="#{issue.id}"><circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" '
            f'fill="{COLOURS.get(issue.class_name, "#333")}" fill-opacity="0.75" stroke="#fff">'
            f"<title>{label}</title></circle></a>"
        )
    bar_m = 10 ** math.floor(math.log10(max(span / 4, 1.0)))
    parts.append(
        f'<line x1="14" y1="{MAP_PX + 8}" x2="{14 + bar_m * scale:.1f}" y2="{MAP_PX + 8}" '
        f'stroke="#000" stroke-width="3"/><text x="16" y="{MAP_PX + 2}" font-size="11">'
        f"{bar_m:g} m</text></svg>"
    )
    return "".join(parts)


def render_report(
    title: str,
    footprints: Mapping[str, Any],
    issues: Sequence[Issue],
    evidence: Mapping[str, bytes],
    summary: Mapping[str, Any],
) -> str:
    """The whole page as a string."""
    rows = []
    for issue in issues:
        info = class_info(issue.class_name)
        jpeg = evidence.get(issue.id)
        thumb = (
            f'<img alt="evidence" src="data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}">'
            if jpeg
            else "—"
        )
        rows.append(
            f'<tr id="{issue.id}"><td>{thumb}</td>'
            f'<td><span class="dot" style="background:{COLOURS.get(issue.class_name, "#333")}">'
            f"</span>{html.escape(info.zh)}<br><small>{html.escape(info.en)}</small></td>"
            f"<td>{issue.lat:.6f}, {issue.lon:.6f}<br><small>σ {issue.sigma_m:.1f} m</small></td>"
            f"<td>{issue.confidence:.2f}</td><td>{issue.observation_count}</td>"
            f"<td>{html.escape(str(issue.status))}</td>"
            f"<td><code>{html.escape(issue.id)}</code></td></tr>"
        )
    facts = "".join(
        f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in summary.items()
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;
margin:1.5em;color:#222}}
table{{border-collapse:collapse;margin-top:1em}}td,th{{border-bottom:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top}}img{{max-width:160px;max-height:160px}}
.dot{{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}}
.wrap{{display:flex;gap:2em;flex-wrap:wrap}}tr:target{{background:#ffc}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<div class="wrap"><div>{_svg(footprints, issues)}</div><ul>{facts}</ul></div>
<h2>问题 Issues ({len(issues)})</h2>
<table><tr><th>证据 Evidence</th><th>类别 Class</th><th>位置 Place</th><th>置信度 Conf.</th>
<th>观测 Views</th><th>状态 Status</th><th>编号 Id</th></tr>
{"".join(rows)}
</table></body></html>
"""
