"""The map page (风险一张图) at ``/`` and its two static files.

The page itself holds no data: it reads the API with the key the user gives it (kept in the
browser's localStorage, or ``/?key=…`` once), so serving it needs no key. The map's settings
(tile server, attribution) are written into the page as JSON.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import HTMLResponse, Response

from xunjian.service.deps import SettingsDep

router = APIRouter(include_in_schema=False)
STATIC = {"map.js": "text/javascript; charset=utf-8", "map.css": "text/css; charset=utf-8"}
_CONFIG_MARK = "/*XUNJIAN_CONFIG*/{}"


@lru_cache(maxsize=8)
def page_file(name: str) -> str:
    return resources.files("xunjian.service").joinpath("web", name).read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse)
def map_page(settings: SettingsDep) -> HTMLResponse:
    config = {
        "api": "/api/v1",
        "tile_url": settings.tile_url,
        "tile_attribution": settings.tile_attribution,
    }
    # JSON inside <script>: "<" escaped so no value can close the element
    text = json.dumps(config, ensure_ascii=False).replace("<", "\\u003c")
    html = page_file("index.html").replace(_CONFIG_MARK, text)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    if name not in STATIC:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no static file {name!r}")
    return Response(page_file(name), media_type=STATIC[name], headers={"Cache-Control": "no-cache"})
