"""Bad inputs on the distributed path: a Celery worker on the real broker and PostgreSQL.

A batch mixing clean photos with the corpus's broken and absurd ones is processed with the
detect stage on a worker. Broken files are failures of ingest and never reach the worker;
kept frames are detected there; and a frame whose object is broken after ingest (overwritten
in the store, the race a presigned URL allows) is refused by the worker with its reason and
listed as a failed frame — the rest of the batch goes on.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.workers import REPO, count_rows, require_broker, squares_set, worker_env
from xunjian.inspect.pipeline import Services, process_batch
from xunjian.inspect.upload import upload_batch
from xunjian.inspect.workers import CeleryDetectRunner, celery_app
from xunjian.settings import Settings
from xunjian.storage.detection_tables import FRAME_DETECTIONS
from xunjian.testing.badinput import DRONE_BATCH, Family, Stage, case, write_corpus

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_worker_detects_the_clean_frames_and_refuses_a_broken_one_by_name(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_broker()
    index = write_corpus(tmp_path / "corpus", families=(Family.IMAGE, Family.POSE))
    queue = f"xunjian-test-{secrets.token_hex(4)}"
    env = worker_env(tmp_path / "shared", postgres_url, queue, "tests.fixtures.workers:squares_set")
    for name, value in env.items():
        if name.startswith("XUNJIAN_"):
            monkeypatch.setenv(name, value)
    settings = Settings()
    services = Services.open(settings)
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "xunjian", "worker", "--loglevel", "warning"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),  # noqa: SIM115
        start_new_session=True,
    )
    try:
        batch = upload_batch(tmp_path / "corpus" / DRONE_BATCH, services.store).batch_id
        victim = f"raw/{batch}/clean_0001.jpg"
        runner = CeleryDetectRunner(celery_app(settings), chunk_size=2, timeout_s=120)

        def sabotaged(*args):  # the object goes bad between ingest and detection
            whole = services.store.get_bytes(victim)
            services.store.put_bytes(victim, whole[: len(whole) // 2])
            return runner(*args)

        result = process_batch(
            services,
            batch,
            detectors=squares_set(),
            detect_runner=sabotaged,
            out_dir=tmp_path / "o",
        )
        failed = dict(result.ingest.failures)
        for entry in index:
            bad, key = case(entry["name"]), f"raw/{batch}/{entry['path'].split('/', 1)[1]}"
            if bad.stage is Stage.INGEST:
                assert bad.matches(failed.pop(key)), bad.name
        assert failed == {}
        frames = len(result.ingest.frames)
        assert frames == len(index) + 3 - len(dict(result.ingest.failures))
        assert result.runner["frames"] == frames  # every kept frame was sent to the worker
        errors = dict(result.frame_errors)
        assert list(errors) == [victim], log.read_text()[-3000:]
        assert "truncated" in errors[victim] and errors[victim].startswith(victim)
        assert result.frames_reused == frames - 1  # detected by the worker, read back here
        assert count_rows(services, FRAME_DETECTIONS) == frames - 1
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        services.close()
