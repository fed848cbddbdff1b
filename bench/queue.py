"""The queue scenario (issue 23): a batch and a promotion against a 50,000-long waitlist.

Each round works on a course of its own (bench/dataset.py's QueueCourse,
built by SQL before the run): QUEUE_SEATS seats taken, QUEUE_WAITING
students waiting. Against the service alone, it times

(a) one POST /enrollments/batch of BATCH_ITEMS students already waiting at
    the back of the queue (each answered 200 already-waiting, with its
    position: the batch reads the queue, the positions are checked);
(b) one PATCH /courses/{id} raising capacity by PROMOTED, which promotes
    that many waiting students before it answers (enrolled checked);

while SINGLE_CLIENTS clients each send POST /students/{id}/courses of new
students into that course ({"waitlist": true}: 202, at the back), one
after another, from before (a) until after (b). A single enroll waits for
the course row's lock, which (a) and (b) hold until they commit, so its
latency is what they make others wait. The singles counted are those in
flight at any time between the start of (a) and the end of (b).

Target: (a) and (b) under TARGET seconds each in every round, the singles'
max latency under TARGET too, and every answer the one expected.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import aiohttp

from .dataset import QUEUE_SCENARIO, QueueCourse

SCENARIO = QUEUE_SCENARIO
BATCH_ITEMS = 1_000
PROMOTED = 10_000
SINGLE_CLIENTS = 2
TARGET = 1.0
# Singles alone before (a), between (a) and (b), and after (b).
PAUSE = 0.3


@dataclass
class Measured:
    """One round."""

    batch: float
    promotion: float
    # (latency, status) of the singles in flight during (a) or (b).
    singles: list[tuple[float, int]] = field(default_factory=list)
    # What was answered other than expected.
    wrong: list[str] = field(default_factory=list)

    @property
    def single_max(self) -> float:
        return max((latency for latency, _ in self.singles), default=0.0)


async def _singles(
    session: aiohttp.ClientSession,
    runs: QueueCourse,
    students: itertools.count,
    stop: asyncio.Event,
    sent: list[tuple[float, float, int]],
) -> None:
    """Enroll new students one after another until `stop`: (start, end, status) each."""
    while not stop.is_set():
        student = next(students)
        if student >= runs.first_single + runs.singles:
            return  # no data left: fewer singles counted
        body = {"course_id": runs.course, "waitlist": True}
        started = time.perf_counter()
        async with session.post(f"/students/{student}/courses", json=body) as response:
            await response.read()
        sent.append((started, time.perf_counter(), response.status))


async def _measure(url: str, token: str, runs: QueueCourse) -> Measured:
    wrong = []
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(url, headers=headers, timeout=timeout) as session:
        stop = asyncio.Event()
        sent: list[tuple[float, float, int]] = []
        students = itertools.count(runs.first_single)
        clients = [
            asyncio.create_task(_singles(session, runs, students, stop, sent))
            for _ in range(SINGLE_CLIENTS)
        ]
        await asyncio.sleep(PAUSE)

        back = range(runs.first_single - BATCH_ITEMS, runs.first_single)
        items = [{"student_id": s, "course_id": runs.course} for s in back]
        started = time.perf_counter()
        async with session.post("/enrollments/batch", json={"items": items}) as response:
            status, answer = response.status, await response.json(content_type=None)
        batch_end = time.perf_counter()
        if status != 200:
            wrong.append(f"batch: {status} {answer}")
        else:
            got = [(r["outcome"], r["body"]["position"]) for r in answer["results"]]
            first = runs.waiting - BATCH_ITEMS + 1
            expected = [("already-waiting", first + k) for k in range(BATCH_ITEMS)]
            if got != expected:
                wrong.append("batch: positions other than those of the queue's back")
        await asyncio.sleep(PAUSE)

        change = {"capacity": runs.seats + PROMOTED}
        patch_start = time.perf_counter()
        async with session.patch(f"/courses/{runs.course}", json=change) as response:
            status, answer = response.status, await response.json(content_type=None)
        patch_end = time.perf_counter()
        if status != 200:
            wrong.append(f"promotion: {status} {answer}")
        elif answer["enrolled"] != runs.seats + PROMOTED:
            wrong.append(f"promotion: enrolled {answer['enrolled']}")
        await asyncio.sleep(PAUSE)
        stop.set()
        await asyncio.gather(*clients)

    during = [
        (end - start, status)
        for start, end, status in sent
        if end >= started and start <= patch_end
    ]
    wrong += [f"single enroll: {status}" for _, status in during if status != 202]
    return Measured(batch_end - started, patch_end - patch_start, during, wrong)


def measure(url: str, token: str, runs: QueueCourse) -> Measured:
    return asyncio.run(_measure(url, token, runs))


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f} ms"


HEADER = ("round", "batch (a)", "promotion (b)", "singles during", "single max", "wrong answers")


def table(measured: list[Measured]) -> list[tuple[str, ...]]:
    return [
        (
            str(n),
            _ms(m.batch),
            _ms(m.promotion),
            str(len(m.singles)),
            _ms(m.single_max),
            str(len(m.wrong)),
        )
        for n, m in enumerate(measured, start=1)
    ]


def caption() -> str:
    return (
        f"{SCENARIO}: a course with {QueueCourse.seats:,} seats taken and "
        f"{QueueCourse.waiting:,} waiting; (a) POST /enrollments/batch of the "
        f"{BATCH_ITEMS:,} at the back of the queue, (b) PATCH /courses/{{id}} raising "
        f"capacity by {PROMOTED:,}, while {SINGLE_CLIENTS} clients enroll new students "
        "into it one after another (the singles in flight during (a) or (b) counted)"
    )


def verdict(measured: list[Measured]) -> str:
    batch = max(m.batch for m in measured)
    promotion = max(m.promotion for m in measured)
    single = max(m.single_max for m in measured)
    wrong = [w for m in measured for w in m.wrong]
    met = batch < TARGET and promotion < TARGET and single < TARGET and not wrong
    line = (
        f"{SCENARIO}: the slowest of {len(measured)} round(s): batch of {BATCH_ITEMS:,} "
        f"{_ms(batch)}, promotion of {PROMOTED:,} {_ms(promotion)}, single enroll meanwhile "
        f"{_ms(single)} at most (target: each < {_ms(TARGET)}); {len(wrong)} wrong answers "
        "(target 0)"
    )
    if wrong:
        line += f", the first: {wrong[0][:200]}"
    return f"{line}: {'met' if met else 'NOT met'}"
