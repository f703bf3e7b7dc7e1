"""CLI: ``xunjian serve`` — the HTTP API and the map page, with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from xunjian.cli.output import fail
from xunjian.errors import XunjianError


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    host: Annotated[
        str | None, typer.Option(help="address to listen on (default: settings, 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (default: settings, 8000)")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Serve the API (/api/v1, OpenAPI at /docs) and the map page (/) until interrupted.

    Uses the configured services (XUNJIAN_* settings), or the embedded defaults: the local
    object store and SQLite under the data directory. Make a key first: `xunjian keys create`.
    """
    import uvicorn

    from xunjian.service.app import create_app
    from xunjian.service.logs import configure_logging
    from xunjian.settings import get_settings

    settings = get_settings()
    updates = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    if updates:
        settings = settings.model_copy(update=updates)
    configure_logging(log_level)
    try:
        app = create_app(settings)
    except XunjianError as exc:
        raise fail(exc) from None
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
