"""The failover drill's accounting: it finds a lost change wherever it is.

The drill itself (make failover-drill) runs in CI; its verdict on "lost"
rests on bench/failover.account(), checked here on answers and events
written out by hand.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from bench.failover import Attempt, Drill, Request, account, written_again

ENROLLED = ("enrollment.created", "request")
DROPPED = ("enrollment.deleted", "dropped")
JOINED = ("waitlist.joined", None)
LEFT = ("waitlist.left", "left")


def answered(op: str, *statuses: int, replayed: bool = False) -> Request:
    """A request of student 1 for course 2 that got `statuses`, one per attempt."""
    request = Request(op, 1, 2, "key" if op == "enroll" else None, replayed=replayed)
    request.attempts = [Attempt(0.0, 0.0, status) for status in statuses]
    if statuses[-1] == 202:
        request.waitlisted_at = datetime.now(UTC).isoformat()
    return request


def accounted(requests: list[Request], events: list[tuple[str, str | None]]) -> Drill:
    drill = Drill("leader", 1, cluster=None)  # type: ignore[arg-type]
    drill.requests = requests
    account(drill, {(1, 2): events})
    return drill


def test_every_change_acknowledged_with_its_event_is_nothing_lost():
    drill = accounted(
        [answered("enroll", 201), answered("drop", 204), answered("enroll", 202)],
        [ENROLLED, DROPPED, JOINED],
    )
    assert (drill.lost, drill.problems) == (0, [])


def test_an_acknowledged_change_without_its_event_is_lost():
    drill = accounted([answered("enroll", 201), answered("drop", 204)], [ENROLLED])
    assert drill.lost == 1


def test_a_lost_drop_cannot_hide_behind_an_in_doubt_one():
    # The first drop failed, then found done (404): its event is there. The
    # second drop was acknowledged and its event is gone. Counting the
    # acknowledged drops against the drop events would find one of each.
    drill = accounted(
        [
            answered("enroll", 201),
            answered("drop", 503, 404),
            answered("enroll", 201),
            answered("drop", 204),
        ],
        [ENROLLED, DROPPED, ENROLLED],
    )
    assert drill.lost == 1
    assert drill.in_doubt == 1


def test_a_replayed_answer_counts_its_change_once_and_as_in_doubt():
    drill = accounted([answered("enroll", 0, 201, replayed=True)], [ENROLLED])
    assert (drill.lost, drill.in_doubt, drill.problems) == (0, 1, [])


def test_a_place_already_held_made_no_event():
    held = answered("enroll", 202)
    held.waitlisted_at = datetime.fromtimestamp(time.time() - 60, UTC).isoformat()
    drill = accounted([answered("enroll", 202), held], [JOINED])
    assert (drill.lost, drill.problems) == (0, [])


def test_an_event_no_answer_accounts_for_is_a_problem():
    drill = accounted([answered("enroll", 201)], [ENROLLED, LEFT])
    assert drill.problems == ["1 changes no answer accounts for"]


def test_writes_are_back_at_the_end_of_the_longest_gap_not_at_the_dying_leaders_last_commit():
    drill = Drill("node", 1, cluster=None)  # type: ignore[arg-type]
    drill.broke_at = 100.0
    # The dying leader's standby still took one commit 0.1 s after the kill;
    # then nothing until the new leader, 5 s after, and writes every 0.1 s.
    answers = [100.1, *(105.0 + n / 10 for n in range(20))]
    drill.requests = [answered("enroll", 201) for _ in answers]
    for request, at in zip(drill.requests, answers, strict=True):
        request.attempts = [Attempt(at - 0.05, at, 201)]
    assert written_again(drill) == pytest.approx(5.0)
    drill.requests = []
    assert written_again(drill) is None
