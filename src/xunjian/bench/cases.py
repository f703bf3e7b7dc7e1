"""The ``case-delivery`` benchmark: issues delivered, lost and duplicated under injected faults.

N issues (200 quick, 2000 full) wait in the outbox of a SQLite database; the project's strict
Open311 server (``cases.testserver``) runs on loopback and injects faults into 30 % of all
calls — 500s, timeouts, dropped connections, slow answers, before and *after* storing the
request. The sender is a real ``xunjian cases run`` process, SIGKILLed once 40 % of the cases
have arrived and started again until the outbox is empty. Then the server's requests are
counted per issue: **lost** (issues with no case), **duplicated** (cases beyond one per issue),
dead letters, lookups that found a case stored behind a fault, calls per endpoint, faults
injected per kind, and throughput.

The peer, in the same run on the same faults (same seed, in process, no kill): the same
sender *without* looking up before resending — what the duplicate trap costs a naive sender.

May import: anything in xunjian but ``service`` and ``cli``.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xunjian.cases.mapping import load_mapping
from xunjian.cases.messages import Delivery, OutboxMessage
from xunjian.cases.open311 import Open311Connector
from xunjian.cases.outbox import Outbox, PublishPolicy, install_outbox
from xunjian.cases.sender import RetryPolicy, Sender
from xunjian.cases.testserver import Faults, Open311TestServer
from xunjian.core.geo import en_to_latlon
from xunjian.core.records import Detection, Observation
from xunjian.storage.issues import IssueStore

FAULT_RATE = 0.3
SEED = 11
KILL_AT = 0.4
HTTP_TIMEOUT_S = 0.15
HANG_S = 0.25
RETRY_ENV = {
    "XUNJIAN_CASE_HTTP_TIMEOUT_S": str(HTTP_TIMEOUT_S),
    "XUNJIAN_CASE_BACKOFF_BASE_S": "0.02",
    "XUNJIAN_CASE_BACKOFF_CAP_S": "0.2",
    "XUNJIAN_CASE_MAX_ATTEMPTS": "60",
    "XUNJIAN_CASE_CLAIM_LEASE_S": "0.5",
}
ISSUE_LINE = re.compile(r"xunjian: (iss_[0-9a-f]+)")
ORIGIN = (29.563, 106.5516)


def observations(batch: str, n: int) -> list[Observation]:
    """``n`` potholes 40 m apart on a grid, each seen in two frames."""
    at = datetime(2026, 5, 12, 2, 0, tzinfo=UTC)
    cols = max(1, int(n**0.5))
    out = []
    for i in range(n):
        east, north = (i % cols) * 40.0, (i // cols) * 40.0
        for f in range(2):
            lat, lon = en_to_latlon(east + 0.05 * f, north, *ORIGIN)
            frame = f"{batch}-P{i}-F{f}"
            det = Detection("road_damage", "pothole", 0.9, (100, 100, 140, 140), "bench@1", frame)
            out.append(Observation(det, batch, frame, float(lat), float(lon), 0.3, 12.0, 0.04, at))
    return out


def _faults() -> Faults:
    return Faults(rate=FAULT_RATE, seed=SEED, hang_s=HANG_S, slow_s=0.02)


def _prepare(url: str, n: int) -> list[str]:
    with IssueStore(url) as store:
        install_outbox(store, PublishPolicy.from_mapping(load_mapping()), "open311")
        return list(store.record_batch("bench", observations("bench", n)).new)


def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _count(server: Open311TestServer, issue_ids: list[str]) -> dict[str, int]:
    per_issue = Counter(
        m.group(1) for r in server.requests() if (m := ISSUE_LINE.search(r["description"]))
    )
    return {
        "issues": len(issue_ids),
        "cases_on_server": len(server.requests()),
        "delivered_once": sum(1 for i in issue_ids if per_issue.get(i) == 1),
        "lost": sum(1 for i in issue_ids if i not in per_issue),
        "duplicated": sum(max(0, c - 1) for c in per_issue.values()),
    }


def _killed_run(n: int, work: Path, timeout_s: float) -> dict[str, Any]:
    url = f"sqlite:///{(work / 'killed.db').as_posix()}"
    issue_ids = _prepare(url, n)
    with Open311TestServer(faults=_faults()) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XUNJIAN_")}
        env.update(
            RETRY_ENV,
            XUNJIAN_DATA_DIR=str(work / "data"),
            XUNJIAN_DATABASE_URL=url,
            XUNJIAN_CASE_SYSTEM="open311",
            XUNJIAN_OPEN311_ENDPOINT=server.url,
            XUNJIAN_OPEN311_API_KEY="test-key",
        )
        code = "import sys; from xunjian.cli import main; sys.argv[0] = 'xunjian'; main()"
        command = [sys.executable, "-c", code, "cases", "run", "--interval", "0.05"]
        log = (work / "sender.log").open("ab")
        start = time.perf_counter()
        first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        _wait(lambda: len(server.requests()) >= KILL_AT * n or first.poll() is not None, timeout_s)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = len(server.requests())
        second = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        with IssueStore(url, migrate=False) as store:
            outbox = Outbox(store)
            done = _wait(
                lambda: outbox.counts()["pending"] == 0 or second.poll() is not None, timeout_s
            )
            wall = time.perf_counter() - start
            second.send_signal(signal.SIGTERM)
            second.wait(30)
            counts = outbox.counts()
            found_again = sum(
                1
                for i in store.issues()
                for e in store.history(i.id)
                if e.kind == "case" and e.data.get("found_existing")
            )
        log.close()
        return {
            **_count(server, issue_ids),
            "finished": done,
            "cases_when_killed": at_kill,
            "dead_letters": counts["dead"],
            "left_pending": counts["pending"],
            "found_by_lookup": found_again,
            "faults_injected": dict(sorted(server.faults.counts.items())),
            "server_calls": dict(sorted(server.calls.items())),
            "wall_s": round(wall, 2),
            "cases_per_s": round(n / wall, 1) if wall else None,
            "second_sender_exit": second.returncode,
        }


class _NoLookup:
    """The connector as a naive sender uses it: never looks before resending."""

    def __init__(self, inner: Open311Connector) -> None:
        self.inner = inner
        self.name = inner.name
        self.mapping = inner.mapping
        self.polls = inner.polls

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def find_existing(self, message: OutboxMessage) -> Delivery | None:
        return None


def _naive_run(n: int, work: Path, timeout_s: float) -> dict[str, Any]:
    url = f"sqlite:///{(work / 'naive.db').as_posix()}"
    issue_ids = _prepare(url, n)
    retry = RetryPolicy(max_attempts=60, base_s=0.02, cap_s=0.2, lease_s=0.5)
    with Open311TestServer(faults=_faults()) as server, IssueStore(url, migrate=False) as store:
        connector = Open311Connector(
            server.url, load_mapping(), api_key="test-key", timeout_s=HTTP_TIMEOUT_S
        )
        sender = Sender(store, _NoLookup(connector), retry=retry, rng=random.Random(SEED))
        outbox = Outbox(store)
        start = time.perf_counter()
        deadline = time.monotonic() + timeout_s
        while outbox.counts()["pending"] and time.monotonic() < deadline:
            sender.deliver_due()  # a faulted services.json fails one try, like any call
            time.sleep(0.02)
        wall = time.perf_counter() - start
        connector.close()
        return {**_count(server, issue_ids), "wall_s": round(wall, 2)}


def bench_case_delivery(quick: bool = False, data_dir: Path | None = None) -> dict[str, Any]:
    """Entry point of ``xunjian bench case-delivery`` (200 issues quick, 2000 full)."""
    n = 200 if quick else 2000
    timeout_s = 120.0 if quick else 900.0
    base = (data_dir / "bench") if data_dir else None
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="case-delivery-", dir=base) as tmp:
        work = Path(tmp)
        killed = _killed_run(n, work, timeout_s)
        naive = _naive_run(n, work, timeout_s)
    return {
        "inputs": {
            "issues": n,
            "fault_rate": FAULT_RATE,
            "fault_seed": SEED,
            "fault_kinds": list(_faults().kinds),
            "http_timeout_s": HTTP_TIMEOUT_S,
            "server_hang_s": HANG_S,
            "sender_killed_at": f"{KILL_AT:.0%} of cases arrived (SIGKILL), then restarted",
            "database": "sqlite",
        },
        "figures": {"xunjian": killed, "naive_no_lookup": naive},
        "ratios": {
            "duplicates_xunjian": killed["duplicated"],
            "duplicates_naive": naive["duplicated"],
            "lost_xunjian": killed["lost"],
        },
    }
