"""The sender: backoff, retries, dead letters, refusals, ordering and crash recovery."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.fixtures.cases import Clock, grid_flight
from xunjian.cases.casebook import case_of
from xunjian.cases.connectors import FileSink
from xunjian.cases.mapping import CaseMapping, load_mapping
from xunjian.cases.messages import CaseRef, Delivery, OutboxMessage, SendContext, StatusReport
from xunjian.cases.outbox import Outbox, PublishPolicy, install_outbox
from xunjian.cases.sender import RetryPolicy, Sender
from xunjian.core.feedback import EventKind
from xunjian.core.issues import IssueStatus
from xunjian.core.verify import Outcome, VerificationDecision
from xunjian.errors import CaseRefusedError, CaseSystemError
from xunjian.storage.issues import IssueStore

RETRY = RetryPolicy(max_attempts=3, base_s=10, cap_s=60, lease_s=300)


class FakeCaseSystem:
    """An in-memory case system; ``failures`` scripts errors per idempotency key."""

    name = "fake"
    polls = False

    def __init__(self, mapping: CaseMapping) -> None:
        self.mapping = mapping
        self.cases: dict[str, str] = {}
        self.sent: list[str] = []
        self.looked_up: list[str] = []
        self.failures: dict[str, list[Exception]] = {}
        self.fail_all: Exception | None = None

    def check(self) -> list[str]:
        return []

    def deliver(self, message: OutboxMessage, ctx: SendContext) -> Delivery:
        if self.fail_all is not None:
            raise self.fail_all
        scripted = self.failures.get(message.idempotency_key)
        if scripted:
            raise scripted.pop(0)
        self.sent.append(message.idempotency_key)
        self.cases[message.idempotency_key] = f"C{len(self.cases) + 1}"
        return Delivery(
            self.cases[message.idempotency_key] if message.kind != "update" else ctx.case_id
        )

    def find_existing(self, message: OutboxMessage) -> Delivery | None:
        self.looked_up.append(message.idempotency_key)
        case = self.cases.get(message.idempotency_key)
        return None if case is None else Delivery(case, found_existing=True)

    def poll(self, cases: Sequence[CaseRef]) -> list[StatusReport]:
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(database_url: str, clock: Clock) -> Iterator[IssueStore]:
    with IssueStore(database_url, clock=clock) as opened:
        install_outbox(opened, PublishPolicy.from_mapping(load_mapping()), "fake")
        yield opened


@pytest.fixture
def fake() -> FakeCaseSystem:
    return FakeCaseSystem(load_mapping())


def sender(store: IssueStore, connector: object, **kw: object) -> Sender:
    return Sender(store, connector, retry=RETRY, rng=random.Random(0), **kw)  # type: ignore[arg-type]


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(base_s=2, cap_s=30)
    rng = random.Random(1)
    delays = [policy.delay_s(n, rng) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        expected = min(30, 2 * 2 ** (n - 1))
        assert 0.5 * expected <= delay <= expected
    assert max(delays) <= 30
    assert policy.delay_s(3, random.Random(5)) == policy.delay_s(3, random.Random(5))


def test_a_delivered_case_publishes_the_issue_and_is_recorded(
    store: IssueStore, fake: FakeCaseSystem
) -> None:
    fused = store.record_batch("B1", grid_flight("B1", 3))
    report = sender(store, fake).deliver_due()
    assert (report.delivered, report.retrying, report.dead) == (3, 0, 0)
    assert sorted(fake.sent) == sorted(fused.new) and fake.looked_up == []
    for issue_id in fused.new:
        issue = store.issue(issue_id, with_observations=False)
        assert issue is not None and issue.status is IssueStatus.PUBLISHED
        with store.engine.connect() as conn:
            case = case_of(conn, issue_id)
        assert case is not None and case.case_id == fake.cases[issue_id]
        events = store.history(issue_id)
        assert [e.kind for e in events][-2:] == [EventKind.STATUS, EventKind.CASE]
        assert events[-2].source == "fake"
    assert Outbox(store).counts() == {"pending": 0, "delivered": 3, "dead": 0}
    assert sender(store, fake).deliver_due().delivered == 0  # nothing twice


def test_transient_failures_back_off_then_die_and_replay_looks_first(
    store: IssueStore, fake: FakeCaseSystem, clock: Clock
) -> None:
    [issue_id] = store.record_batch("B1", grid_flight("B1", 1)).new
    fake.failures[issue_id] = [CaseSystemError("HTTP 503")] * 3
    s = sender(store, fake)
    assert s.deliver_due().retrying == 1
    [m] = Outbox(store).messages()
    assert m.attempts == 1 and m.last_error == "HTTP 503"
    wait = (m.next_attempt_at - clock.now).total_seconds()
    assert 5 <= wait <= 10
    assert s.deliver_due().retrying == 0  # not due yet
    clock.advance(seconds=wait)
    assert s.deliver_due().retrying == 1
    assert fake.looked_up == [issue_id]  # tried before: look before resending
    clock.advance(seconds=60)
    report = s.deliver_due()
    assert report.dead == 1
    [m] = Outbox(store).messages()
    assert (m.state, m.attempts, m.last_error) == ("dead", 3, "HTTP 503")

    assert Outbox(store).replay(all_dead=True) == 1
    [m] = Outbox(store).messages()
    assert (m.state, m.attempts) == ("pending", 0) and m.last_error == "HTTP 503"
    assert s.deliver_due().delivered == 1
    assert fake.looked_up == [issue_id, issue_id, issue_id]
    assert fake.sent == [issue_id]


def test_a_refused_message_is_dead_at_once_and_the_rest_go_on(
    store: IssueStore, fake: FakeCaseSystem
) -> None:
    bad, *_good = store.record_batch("B1", grid_flight("B1", 3)).new
    fake.failures[bad] = [CaseRefusedError("HTTP 400: [400] attribute bad", status=400)]
    report = sender(store, fake).deliver_due()
    assert (report.delivered, report.dead) == (2, 1)
    [dead] = Outbox(store).messages(state="dead")
    assert dead.issue_id == bad and "attribute bad" in (dead.last_error or "")
    issue = store.issue(bad, with_observations=False)
    assert issue is not None and issue.status is IssueStatus.CANDIDATE


def test_a_refused_connector_stops_the_round_and_keeps_everything(
    store: IssueStore, fake: FakeCaseSystem
) -> None:
    store.record_batch("B1", grid_flight("B1", 4))
    fake.fail_all = CaseRefusedError("open311 POST …/requests.json: HTTP 403: bad key", status=403)
    report = sender(store, fake).deliver_due()
    assert report.stopped and "HTTP 403" in report.stopped
    messages = Outbox(store).messages()
    assert all(m.state == "pending" for m in messages)
    assert sorted(m.attempts for m in messages) == [0, 0, 0, 1]


def test_an_unreachable_case_system_leaves_messages_pending_saying_why(
    store: IssueStore, fake: FakeCaseSystem
) -> None:
    store.record_batch("B1", grid_flight("B1", 6))
    fake.fail_all = CaseSystemError("open311 POST http://10.0.0.9/requests.json: ConnectError")
    report = sender(store, fake).deliver_due()
    assert report.stopped and "3 failed tries in a row" in report.stopped
    messages = Outbox(store).messages()
    assert all(m.state == "pending" for m in messages)
    tried = [m for m in messages if m.attempts]
    assert len(tried) == 3 and all("10.0.0.9" in (m.last_error or "") for m in tried)


def test_an_update_never_overtakes_its_case(store: IssueStore, fake: FakeCaseSystem) -> None:
    [issue_id] = store.record_batch("B1", grid_flight("B1", 1)).new
    fake.failures[issue_id] = [CaseRefusedError("HTTP 404", status=404)]
    s = sender(store, fake)
    s.deliver_due()  # the create is dead now
    store.set_status(issue_id, IssueStatus.PUBLISHED, source="operator")
    store.set_status(issue_id, IssueStatus.CLOSED, source="case_platform")
    store.record_verifications([VerificationDecision(issue_id, "B2", Outcome.VERIFIED_FIXED, 2, 2)])
    assert s.deliver_due().delivered == 0
    assert Outbox(store).replay(all_dead=True) == 1
    assert s.deliver_due().delivered == 2
    assert fake.sent == [issue_id, f"{issue_id}:verified_fixed"]


def test_a_sender_killed_after_sending_is_not_a_second_case(
    store: IssueStore, fake: FakeCaseSystem, clock: Clock
) -> None:
    [issue_id] = store.record_batch("B1", grid_flight("B1", 1)).new
    dying = sender(store, fake)
    [claimed] = dying._claim(10)
    fake.deliver(claimed, SendContext())  # …and the process dies before acknowledging
    assert sender(store, fake).deliver_due().delivered == 0  # leased: not yet
    clock.advance(seconds=RETRY.lease_s)
    report = sender(store, fake).deliver_due()
    assert (report.delivered, report.found_existing) == (0, 1)
    assert fake.sent == [issue_id]
    issue = store.issue(issue_id, with_observations=False)
    assert issue is not None and issue.status is IssueStatus.PUBLISHED


def test_stopping_hands_claimed_messages_back(store: IssueStore, fake: FakeCaseSystem) -> None:
    store.record_batch("B1", grid_flight("B1", 3))
    report = sender(store, fake).deliver_due(should_stop=lambda: True)
    assert report.stopped == "asked to stop" and fake.sent == []
    assert [m.attempts for m in Outbox(store).messages()] == [0, 0, 0]


def test_the_file_sink_writes_each_case_once(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "out" / "cases.jsonl"
    with IssueStore(database_url, clock=Clock()) as store:
        install_outbox(store, PublishPolicy.from_mapping(load_mapping()), "file")
        fused = store.record_batch("B1", grid_flight("B1", 3))
        sink = FileSink(path, load_mapping())
        assert "writable" in sink.check()[0]
        assert Sender(store, sink).deliver_due().delivered == 3
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert sorted(d["idempotency_key"] for d in lines) == sorted(fused.new)
        assert {d["case_id"] for d in lines} == set(fused.new)
        # a second sink (another process) and a replayed message: still one line per case
        other = FileSink(path, load_mapping())
        [m] = Outbox(store).messages(issue_id=fused.new[0])
        assert other.find_existing(m) is not None
        assert other.deliver(m, SendContext()).found_existing
        assert len(path.read_text(encoding="utf-8").splitlines()) == 3


def test_the_file_sink_survives_a_torn_last_line(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text('{"idempotency_key": "old"}\n{"idempotency_key": "to', encoding="utf-8")
    with IssueStore(database_url, clock=Clock()) as store:
        install_outbox(store, PublishPolicy.from_mapping(load_mapping()), "file")
        store.record_batch("B1", grid_flight("B1", 1))
        assert Sender(store, FileSink(path, load_mapping())).deliver_due().delivered == 1
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["event"] == "case.create"


def test_two_senders_at_once_never_share_a_message(store: IssueStore, fake: FakeCaseSystem) -> None:
    store.record_batch("B1", grid_flight("B1", 30))
    senders = [Sender(store, fake, retry=RETRY, batch_size=4) for _ in range(2)]  # type: ignore[arg-type]
    threads = [threading.Thread(target=s.deliver_due) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(fake.sent) == 30 and len(set(fake.sent)) == 30
    assert Outbox(store).counts()["delivered"] == 30
