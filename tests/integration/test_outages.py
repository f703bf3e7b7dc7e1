"""Outages in the middle of a batch: the object store or the database goes away for a while.

A loopback proxy (``tests/fixtures/proxy.py``) sits between xunjian and the real server — the
moto S3 server, PostgreSQL — and is cut for a few seconds while a batch is being detected.
The batch must pause, go on when the server is back, and end with exactly the issues of an
undisturbed run: nothing lost, no frame marked failed, nothing stored twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.fixtures.proxy import TcpProxy
from tests.fixtures.s3 import S3_ACCESS_KEY, S3_SECRET_KEY
from tests.fixtures.workers import count_rows, issue_rows, slow_squares_set, squares_set
from tests.unit.inspect.test_pipeline import SQUARES_EN, fly
from xunjian.inspect.pipeline import BatchResult, Services, process_batch, run_folder
from xunjian.inspect.upload import upload_batch
from xunjian.settings import Settings
from xunjian.storage.detection_tables import DETECTIONS, FRAME_DETECTIONS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 3.0


@pytest.fixture
def flight(tmp_path: Path) -> Path:
    return fly(tmp_path / "flight", SQUARES_EN, datetime(2026, 11, 24, 2, tzinfo=UTC))


@pytest.fixture
def reference(tmp_path: Path, flight: Path) -> Iterator[tuple[list[Any], int]]:
    services = Services.open(Settings(data_dir=tmp_path / "reference"))
    try:
        _, result = run_folder(services, flight, detectors=squares_set(), out_dir=tmp_path / "r")
        yield issue_rows(services), result.detections
    finally:
        services.close()


def _run_with_outage(
    services: Services, batch: str, proxy: TcpProxy, ledger: Callable[[], int], out: Path
) -> BatchResult:
    """Processes ``batch`` in a thread and cuts ``proxy`` once two frames are detected."""
    outcome: dict[str, Any] = {}

    def process() -> None:
        try:
            outcome["result"] = process_batch(
                services, batch, detectors=slow_squares_set(), out_dir=out
            )
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=process)
    thread.start()
    deadline = time.monotonic() + 60
    while ledger() < 2 and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    assert ledger() >= 2, "detection never started"
    proxy.cut()
    time.sleep(OUTAGE_S)
    proxy.restore()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the batch did not finish after the outage"
    if "error" in outcome:
        raise outcome["error"]
    result: BatchResult = outcome["result"]
    return result


def test_the_object_store_going_away_pauses_the_batch(
    tmp_path: Path,
    s3_endpoint: str,
    s3_bucket: str,
    flight: Path,
    reference: tuple[list[Any], int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="xunjian.inspect.resilience")
    host, port = s3_endpoint.split(":")
    with TcpProxy(host, int(port)) as proxy:
        settings = Settings(
            data_dir=tmp_path / "data",
            object_store="s3",
            s3_endpoint=f"127.0.0.1:{proxy.port}",
            s3_access_key=S3_ACCESS_KEY,
            s3_secret_key=S3_SECRET_KEY,  # type: ignore[arg-type]
            bucket=s3_bucket,
            outage_max_wait_s=60,
        )
        services = Services.open(settings)
        try:
            batch = upload_batch(flight, services.store).batch_id
            result = _run_with_outage(
                services,
                batch,
                proxy,
                lambda: count_rows(services, FRAME_DETECTIONS),
                tmp_path / "o",
            )
            expected, detections = reference
            assert result.frame_errors == [] and result.ingest.failures == []
            assert issue_rows(services) == expected
            assert count_rows(services, DETECTIONS) == detections  # no frame detected twice
            assert proxy.connections > 1  # it reconnected after the cut
            assert any("cannot reach S3" in r.getMessage() for r in caplog.records)
        finally:
            services.close()


def test_a_database_restart_pauses_the_batch(
    tmp_path: Path,
    postgres_url: str,
    flight: Path,
    reference: tuple[list[Any], int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="xunjian.inspect.resilience")
    real = make_url(postgres_url)
    with TcpProxy(real.host or "127.0.0.1", real.port or 5432) as proxy:
        via_proxy = real.set(host="127.0.0.1", port=proxy.port)
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=via_proxy.render_as_string(hide_password=False),
            outage_max_wait_s=60,
        )
        services = Services.open(settings)
        # the ledger is counted straight on the server, not through the proxy being cut
        direct = Services.open(Settings(data_dir=tmp_path / "direct", database_url=postgres_url))
        try:
            batch = upload_batch(flight, services.store).batch_id
            result = _run_with_outage(
                services, batch, proxy, lambda: count_rows(direct, FRAME_DETECTIONS), tmp_path / "o"
            )
            expected, detections = reference
            assert result.frame_errors == [] and result.ingest.failures == []
            assert issue_rows(direct) == expected
            assert count_rows(direct, DETECTIONS) == detections
            assert any("trying again" in r.getMessage() for r in caplog.records)
        finally:
            direct.close()
            services.close()
