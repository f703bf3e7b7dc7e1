"""The HTTP service: FastAPI app (``create_app``), routes, API-key auth, the map page.

May import every other layer of xunjian; nothing imports it but the CLI (``xunjian serve``).
"""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    # FastAPI is imported when the app is asked for, not with the package
    if name == "create_app":
        from xunjian.service.app import create_app

        return create_app
    raise AttributeError(name)
