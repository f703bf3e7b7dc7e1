"""The ``load`` benchmark: the service under concurrent reads and uploads while it processes.

A real ``xunjian serve`` (uvicorn, embedded defaults, the shipped detectors) runs on loopback.
A test-range survey is processed first so that there are issues to read. Then two phases of
the same length, each with the same client threads:

* ``idle``: readers only (issues as GeoJSON — a bbox page, a class filter, one issue with its
  history — batch status, health), the service doing nothing else;
* ``busy``: the same readers plus uploaders (create a batch, PUT small JPEGs through the API)
  while a second survey, started by a store event, is being processed in the service.

Per phase and request kind: count, errors (non-2xx or no answer), p50 / p95 / p99 ms. The peer
is the idle phase: ``p95_ratio`` = busy p95 ÷ idle p95 says what a batch in progress costs
the readers. Bounded: ``quick`` 8 s per phase with 4 clients, else 30 s with 12.

May import anything in xunjian but ``service`` and ``cli`` (the service runs as a process).
"""

from __future__ import annotations

import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from xunjian.bench.pipeline import replicate
from xunjian.inspect.pipeline import Services, load_available_detectors, run_folder
from xunjian.inspect.upload import upload_batch
from xunjian.settings import Settings
from xunjian.storage.apikeys import KeyStore

Samples = dict[str, list[float]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_service(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    import httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith("XUNJIAN_")}
    env["XUNJIAN_DATA_DIR"] = str(data_dir)
    process = subprocess.Popen(
        [sys.executable, "-m", "xunjian", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError("the service did not become ready in 120 s")


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    arr = np.array(values) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "p99_ms": round(float(np.percentile(arr, 99)), 2),
    }


class _Clients:
    """Client threads hitting the service until ``stop`` is set; latencies per kind."""

    def __init__(self, base: str, key: str, issue_ids: list[str], bbox: str, jpeg: bytes) -> None:
        self.base, self.key = base, key
        self.issue_ids, self.bbox, self.jpeg = issue_ids, bbox, jpeg
        self.times: Samples = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.error_examples: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def _call(self, client: Any, kind: str, method: str, url: str, **kw: Any) -> Any:
        import httpx

        started = time.perf_counter()
        try:
            response = client.request(method, url, **kw)
            ok = response.status_code < 300
            detail = f"{kind}: {response.status_code} {response.text[:120]}"
        except httpx.HTTPError as exc:
            response, ok, detail = None, False, f"{kind}: {type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - started
        with self.lock:
            self.times[kind].append(elapsed)
            if not ok:
                self.errors[kind] += 1
                if len(self.error_examples) < 5:
                    self.error_examples.append(detail)
        return response

    def reader(self, seed: int) -> None:
        import httpx

        rng = random.Random(seed)
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=30) as client:
            while not self.stop.is_set():
                pick = rng.random()
                if pick < 0.35:
                    self._call(client, "issues_bbox", "GET", "/api/v1/issues", params={
                        "bbox": self.bbox, "limit": 200})  # fmt: skip
                elif pick < 0.55:
                    self._call(client, "issues_class", "GET", "/api/v1/issues", params={
                        "class": "pothole", "limit": 200})  # fmt: skip
                elif pick < 0.8 and self.issue_ids:
                    issue = rng.choice(self.issue_ids)
                    self._call(client, "issue_one", "GET", f"/api/v1/issues/{issue}")
                elif pick < 0.9:
                    self._call(client, "batches", "GET", "/api/v1/batches")
                else:
                    self._call(client, "healthz", "GET", "/healthz")

    def uploader(self, seed: int) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=60) as client:
            n = 0
            while not self.stop.is_set():
                batch = f"load-{seed}-{n}-{secrets.token_hex(3)}"
                self._call(client, "batch_create", "POST", "/api/v1/batches",
                           json={"batch_id": batch})  # fmt: skip
                for i in range(3):
                    if self.stop.is_set():
                        break
                    self._call(client, "upload_put", "PUT",
                               f"/api/v1/batches/{batch}/files/IMG_{i:03d}.JPG",
                               content=self.jpeg)  # fmt: skip
                n += 1

    def run(self, seconds: float, readers: int, uploaders: int) -> dict[str, Any]:
        self.times.clear()
        self.errors.clear()
        self.stop.clear()
        threads = [threading.Thread(target=self.reader, args=(i,)) for i in range(readers)]
        threads += [
            threading.Thread(target=self.uploader, args=(100 + i,)) for i in range(uploaders)
        ]
        for t in threads:
            t.start()
        time.sleep(seconds)
        self.stop.set()
        for t in threads:
            t.join(timeout=120)
        kinds = {
            kind: {"requests": len(v), "errors": self.errors.get(kind, 0), **_percentiles(v)}
            for kind, v in sorted(self.times.items())
        }
        total = sum(len(v) for v in self.times.values())
        return {
            "seconds": seconds,
            "clients": readers + uploaders,
            "requests": total,
            "errors": sum(self.errors.values()),
            "requests_per_s": round(total / seconds, 1),
            "by_kind": kinds,
            "error_examples": list(self.error_examples),
        }


def bench_load(quick: bool = False) -> dict[str, Any]:
    """Idle vs busy latency percentiles and errors of the service; see the module docstring."""
    from xunjian.datasets.synth import make_small_flight

    seconds, clients = (8.0, 4) if quick else (30.0, 12)
    import httpx

    with tempfile.TemporaryDirectory(prefix="xunjian-bench-load-") as tmp:
        root = Path(tmp)
        make_small_flight(root / "survey", seed=7)
        first = replicate(root / "survey", 10 if quick else 28, root / "first")
        second = replicate(root / "survey", 20 if quick else 56, root / "second")
        settings = Settings(data_dir=root / "data")
        services = Services.open(settings)
        try:
            detectors, _ = load_available_detectors()
            run_folder(services, first, detectors=detectors, out_dir=root / "out")
            issue_ids = [i.id for i in services.issues.issues()]
            lat = [i.lat for i in services.issues.issues()] or [29.563]
            lon = [i.lon for i in services.issues.issues()] or [106.5516]
            bbox = f"{min(lon) - 1e-3},{min(lat) - 1e-3},{max(lon) + 1e-3},{max(lat) + 1e-3}"
            keys = KeyStore(settings.db_url, migrate=False, engine=services.catalog.engine)
            _, key = keys.create("bench-load", "admin")
            jpeg = next(first.glob("*.JPG")).read_bytes()
            pending = upload_batch(second, services.store)
            bucket = services.store.bucket
        finally:
            services.close()

        port = _free_port()
        server = _start_service(root / "data", port, root / "service.log")
        base = f"http://127.0.0.1:{port}"
        try:
            clients_ = _Clients(base, key, issue_ids, bbox, jpeg)
            idle = clients_.run(seconds, readers=clients, uploaders=0)
            event = {
                "Records": [
                    {
                        "eventName": "ObjectCreated:Put",
                        "s3": {
                            "bucket": {"name": bucket},
                            "object": {"key": pending.manifest_key},
                        },
                    }
                ]
            }
            started = httpx.post(
                f"{base}/api/v1/store-events",
                json=event,
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            ).json()
            busy = clients_.run(seconds, readers=clients, uploaders=max(1, clients // 4))
            status = httpx.get(
                f"{base}/api/v1/batches/{pending.batch_id}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            ).json()
        finally:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
    ratios = {
        kind: round(b["p95_ms"] / idle["by_kind"][kind]["p95_ms"], 2)
        for kind, b in busy["by_kind"].items()
        if kind in idle["by_kind"] and b["p95_ms"] and idle["by_kind"][kind]["p95_ms"]
    }
    return {
        "idle": idle,
        "busy": busy,
        "p95_ratio_busy_vs_idle": ratios,
        "batch_during_busy": {
            "accepted": started.get("accepted"),
            "progress_at_end": status.get("progress"),
        },
        "errors_total": idle["errors"] + busy["errors"],
    }
