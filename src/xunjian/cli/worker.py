"""``xunjian worker``: a Celery worker for the distributed detect stage (``inspect.workers``)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from xunjian.cli.output import fail


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


def worker(
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", "-Q", help="queues to consume (default: worker_queue)"),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="tasks at once in this worker")] = 1,
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "info",
) -> None:
    """Run a worker: detect frames of batches sent by `process` with XUNJIAN_RUNNER=celery.

    It needs the same database, object store and broker as the process that sends the batch
    (XUNJIAN_DATABASE_URL, XUNJIAN_OBJECT_STORE/…, XUNJIAN_BROKER_URL).
    """
    from xunjian.errors import XunjianError
    from xunjian.inspect.workers import celery_app
    from xunjian.settings import get_settings

    settings = get_settings()
    try:
        app = celery_app(settings)
    except XunjianError as exc:
        raise fail(exc) from None
    queues = queue or [settings.worker_queue]
    # One task per process: a SIGKILL then loses exactly that task, which the broker re-delivers.
    pool = "solo" if concurrency == 1 else "prefork"
    app.worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={concurrency}",
            f"--pool={pool}",
            "--queues",
            ",".join(queues),
            # a unique node name: two workers named alike on one host clash on the broker
            f"--hostname=xunjian-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )
