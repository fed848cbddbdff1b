"""The failover drill: lose a database server under registration load, and lose nothing acknowledged.

    make failover-drill                      # every scenario once
    make failover-drill FAILOVER_ARGS="--scenarios leader --rounds 3"

It starts the three-node Patroni cluster of deploy/patroni/ on 127.0.0.1 from
nothing (bench/cluster.py), creates the service's database and roles,
migrates it, and serves the API against HAProxy's primary port, as
production would. Many clients then enroll (asking to wait when the course
is full), drop and leave waitlists, each POST with its own Idempotency-Key,
retrying a 503 after its Retry-After with the same key, while a feed client
follows GET /events. In the middle of it the scenario breaks something:

- leader:  SIGKILL the leader's postmaster (Patroni lives and fails over);
- node:    SIGKILL the leader's Patroni and postmaster (the machine is gone),
           then start that node's Patroni again: it rejoins as a standby;
- replica: SIGKILL the synchronous standby's postmaster;
- etcd:    stop etcd for ETCD_DOWN seconds, then start it again.

When the cluster has settled it checks, from the database:

- every request the service acknowledged (2xx) is there: the event its
  change recorded, and for a POST its stored answer (acknowledged lost: 0);
- the invariants of Waitlists (bench/invariants.py, and positions 1..n);
- the feed client saw every event exactly once, in order, and none that
  the database does not have;
- every 5xx was a 503 `database-unavailable` or `busy` with Retry-After,
  never a 500, and the service answered writes again without a restart.

One line per drill, then the last line:
`failover: N acknowledged, 0 lost, M in doubt, no leader for X s, first write after Y s`
(the totals, and the longest times of the drills that lose the leader).
"In doubt": requests answered with an error whose change had in fact been
made, which the client's retry found done. "First write": the end of the
longest time without an acknowledged write (written_again). Exit status 1
when anything above fails or writes took longer to come back than the
bound (5 s after a postmaster kill, 10 s after a node's loss).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import subprocess
import sys
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
import asyncpg

from service.embedded import free_port

from . import servers
from .cluster import PG_BIN, PRIMARY_PORT, REWIND_USER, Cluster, ClusterError
from .invariants import WAITLIST_INVARIANTS

SCENARIOS = ("leader", "node", "replica", "etcd")
# Seconds from the break to the first acknowledged write, at most.
BOUNDS = {"leader": 5.0, "node": 10.0}
WORKERS = 16  # clients changing enrollments at once
STUDENTS_EACH = 10  # each client's own students: one request at a time on each
COURSES = 20
CAPACITY = 6
WAITLIST = 4
WARM_UP = 4.0  # seconds of load before the break
AFTER = 5.0  # seconds of load once writes are back
ETCD_DOWN = 10.0
GIVE_UP = 60.0  # seconds a client keeps retrying one request
DATABASE = "enrollment"
# The answer while the first request with the same key still runs (a
# commit waiting for the standby holds the key): retried like a 503.
IN_USE = "/problems/idempotency-key-in-use"

# What each acknowledged change recorded: (event type, its data's via or reason).
EVENT_OF = {
    ("enroll", 201): ("enrollment.created", "request"),
    ("enroll", 202): ("waitlist.joined", None),
    ("drop", 204): ("enrollment.deleted", "dropped"),
    ("leave", 204): ("waitlist.left", "left"),
}


@dataclass
class Attempt:
    sent: float
    answered: float
    status: int  # 0: no answer (the connection failed)
    problem: str = ""
    retry_after: str | None = None

    @property
    def failed(self) -> bool:
        """No answer, or a 5xx: the client cannot tell whether the change was made."""
        return self.status == 0 or self.status >= 500


@dataclass
class Request:
    op: str
    student: int
    course: int
    key: str | None
    attempts: list[Attempt] = field(default_factory=list)
    replayed: bool = False
    sent_at: float = field(default_factory=time.time)  # wall clock, as the database's now()
    waitlisted_at: str | None = None  # a 202's: a new place, or the one it already had

    @property
    def final(self) -> int:
        return self.attempts[-1].status if self.attempts else 0

    @property
    def erred(self) -> bool:
        return any(a.failed for a in self.attempts[:-1])


@dataclass
class Drill:
    scenario: str
    round: int
    cluster: Cluster
    requests: list[Request] = field(default_factory=list)
    feed: list[int] = field(default_factory=list)
    broke_at: float = 0.0
    restored_at: float = 0.0  # etcd started again
    no_leader: float = 0.0
    first_write: float | None = None
    rejoined: float | None = None
    problems: list[str] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    acknowledged: int = 0
    lost: int = 0
    in_doubt: int = 0

    def writes_stopped(self) -> float:
        """Seconds from the break to the first write that failed (the leader gave up)."""
        failed = [
            a.sent for r in self.requests for a in r.attempts if a.sent > self.broke_at and a.failed
        ]
        return min(failed, default=self.broke_at) - self.broke_at

    def line(self, prefix: str = "failover") -> str:
        first = f"{self.first_write:.1f}" if self.first_write is not None else "never"
        return (
            f"{prefix}: {self.acknowledged} acknowledged, {self.lost} lost, {self.in_doubt} in doubt,"
            f" no leader for {self.no_leader:.1f} s, first write after {first} s"
        )


class Load:
    """The clients: each owns some students and changes their enrollments one request at a time."""

    def __init__(self, url: str, students: list[int], courses: list[int], drill: Drill) -> None:
        self.url = url
        self.students = students
        self.courses = courses
        self.drill = drill
        self.stopping = asyncio.Event()

    async def client(self, session: aiohttp.ClientSession, own: list[int], seed: int) -> None:
        """Enroll, or undo what it believes one of its students has: drop a seat, leave a queue."""
        rng = random.Random(seed)
        believed: dict[tuple[int, int], str] = {}
        while not self.stopping.is_set():
            student = rng.choice(own)
            held = [(c, what) for (s, c), what in believed.items() if s == student]
            if held and rng.random() < 0.5:
                course, what = rng.choice(held)
                op = "drop" if what == "enrolled" else "leave"
            else:
                op, course = "enroll", rng.choice(self.courses)
                if (student, course) in believed:
                    continue
            final = (await self.send(session, op, student, course)).final
            if final in (200, 201) or (op == "leave" and final == 404):
                believed[(student, course)] = "enrolled"  # a 404 to leave: promoted meanwhile
            elif final == 202:
                believed[(student, course)] = "waiting"
            elif final in (204, 404):
                believed.pop((student, course), None)

    async def probe(self, session: aiohttp.ClientSession, student: int, course: int) -> None:
        """Enroll and drop one student in a course without a limit, every 0.1 s, retrying as often.

        Unlike the clients it does not wait for Retry-After: it tells when
        the service can write again, whatever the clients' back-off.
        """
        enrolled = False
        while not self.stopping.is_set():
            op = "drop" if enrolled else "enroll"
            final = (await self.send(session, op, student, course, pace=0.1)).final
            enrolled = final in (200, 201) if op == "enroll" else final not in (204, 404)
            await asyncio.sleep(0.1)

    async def send(
        self,
        session: aiohttp.ClientSession,
        op: str,
        student: int,
        course: int,
        pace: float | None = None,
    ) -> Request:
        """One request, sent again with the same Idempotency-Key after each 503 (Retry-After, or `pace`)."""
        if op == "enroll":
            method, path = "POST", f"/students/{student}/courses"
            body: dict | None = {"course_id": course, "waitlist": True}
        elif op == "drop":
            method, path, body = "DELETE", f"/students/{student}/courses/{course}", None
        else:
            method, path, body = "DELETE", f"/students/{student}/waitlist/{course}", None
        key = str(uuid.uuid4()) if method == "POST" else None
        headers = {"Idempotency-Key": key} if key else {}
        request = Request(op, student, course, key)
        self.drill.requests.append(request)
        started = time.monotonic()
        while True:
            sent = time.monotonic()
            try:
                async with session.request(
                    method, self.url + path, json=body, headers=headers
                ) as response:
                    status = response.status
                    payload = (
                        await response.json(content_type=None)
                        if status >= 400 or status == 202
                        else None
                    )
                    if not isinstance(payload, dict):
                        payload = {}
                    attempt = Attempt(
                        sent,
                        time.monotonic(),
                        status,
                        payload.get("type", "") if status >= 400 else "",
                        response.headers.get("Retry-After"),
                    )
                    request.replayed = response.headers.get("Idempotent-Replayed") == "true"
                    if status == 202:
                        request.waitlisted_at = payload.get("waitlisted_at")
            except (TimeoutError, aiohttp.ClientError, OSError):
                attempt = Attempt(sent, time.monotonic(), 0)
            request.attempts.append(attempt)
            again = attempt.status in (0, 503) or attempt.problem == IN_USE
            if not again or time.monotonic() - started > GIVE_UP:
                return request
            try:
                wait = pace or float(attempt.retry_after or 0.5)
            except ValueError:
                wait = 0.5
            # As a client should: after Retry-After, a little spread.
            await asyncio.sleep(wait * random.uniform(0.5, 1.0))

    async def follow_feed(self, session: aiohttp.ClientSession, done: asyncio.Event) -> None:
        """GET /events from the start, following next_cursor, until the load ended and it is read."""
        cursor = None
        while True:
            params = {"limit": "1000", "wait": "1"}
            if cursor:
                params["cursor"] = cursor
            try:
                async with session.get(self.url + "/events", params=params) as response:
                    if response.status != 200:
                        await asyncio.sleep(0.2)
                        continue
                    page = await response.json()
            except (TimeoutError, aiohttp.ClientError, OSError):
                await asyncio.sleep(0.2)
                continue
            self.drill.feed.extend(event["id"] for event in page["items"])
            cursor = page["next_cursor"]
            if not page["items"] and done.is_set():
                return


async def watch_leader(cluster: Cluster, drill: Drill, stopping: asyncio.Event) -> None:
    """Add up the time no node was a running primary, from the break on (sampled every 0.1 s)."""
    previous = time.monotonic()
    while not stopping.is_set():
        leader = await asyncio.to_thread(cluster.leader)
        now = time.monotonic()
        if leader is None and drill.broke_at:
            drill.no_leader += now - max(previous, drill.broke_at)
        previous = now
        await asyncio.sleep(0.1)


def _psql(cluster: Cluster, database: str, *args: str, env: dict[str, str] | None = None) -> None:
    psql = PG_BIN / "psql" if (PG_BIN / "psql").exists() else Path("psql")
    dsn = cluster.superuser_dsn.rsplit("/", 1)[0] + "/" + database
    subprocess.run(
        [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, *args],
        check=True,
        env={**os.environ, **(env or {})},
        capture_output=True,
    )


def prepare_database(cluster: Cluster, connect: str) -> tuple[str, str]:
    """The service's database, roles (deploy/roles.sql) and schema; (owner DSN, app DSN).

    `connect`: "haproxy", its primary port; "hosts", every node's address in
    one DSN with target_session_attrs=read-write (asyncpg tries them in turn).
    """
    owner, app = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    _psql(cluster, "postgres", "-c", f"create database {DATABASE}")
    roles = str(servers.ROOT / "deploy" / "roles.sql")
    _psql(cluster, DATABASE, "-f", roles, env={"APP_DB_PASSWORD": app, "OWNER_DB_PASSWORD": owner})
    # roles.sql takes CONNECT on every other database from PUBLIC; Patroni's
    # rewind user reads the new leader through "postgres" before pg_rewind,
    # and without it a failed leader never rejoins (docs/operations.md).
    _psql(cluster, "postgres", "-c", f"grant connect on database postgres to {REWIND_USER}")
    base = f"127.0.0.1:{PRIMARY_PORT}/{DATABASE}"
    owner_dsn = f"postgresql://enrollment_owner:{owner}@{base}"
    app_dsn = f"postgresql://enrollment_app:{app}@{base}"
    if connect == "hosts":
        hosts = ",".join(node.env["PATRONI_POSTGRESQL_LISTEN"] for node in cluster.nodes)
        app_dsn = (
            f"postgresql://enrollment_app:{app}@{hosts}/{DATABASE}?target_session_attrs=read-write"
        )
    subprocess.run(
        servers.python_module("service", "migrate"),
        cwd=servers.ROOT,
        env=servers.child_env(DATABASE_URL=owner_dsn),
        check=True,
        capture_output=True,
    )
    return owner_dsn, app_dsn


async def seed(url: str) -> tuple[list[int], list[int]]:
    """The drill's students and courses."""
    async with aiohttp.ClientSession() as session:

        async def post(path: str, body: dict) -> int:
            async with session.post(url + path, json=body) as response:
                if response.status != 201:
                    raise RuntimeError(f"POST {path}: {response.status} {await response.text()}")
                return (await response.json())["id"]

        run = uuid.uuid4().hex[:6]
        courses = [
            await post(
                "/courses",
                {
                    "code": f"F{run}{n}",
                    "title": f"Drill course {n}",
                    "capacity": CAPACITY,
                    "waitlist_capacity": WAITLIST,
                },
            )
            for n in range(COURSES)
        ]
        students = [
            await post("/students", {"name": f"Drill {n}", "email": f"drill-{run}-{n}@example.org"})
            for n in range(WORKERS * STUDENTS_EACH + 1)
        ]
        # The probe's: no capacity, so its enrollment always succeeds.
        courses.append(await post("/courses", {"code": f"F{run}P", "title": "Drill probe"}))
    return students, courses


async def drive(cluster: Cluster, url: str, drill: Drill, service: servers.Server) -> None:
    students, courses = await seed(url)
    probe_student, probe_course = students.pop(), courses.pop()
    load = Load(url, students, courses, drill)
    feed_done = asyncio.Event()
    watching = asyncio.Event()
    pids = {worker.pid for worker in service.workers()}
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        clients = [
            asyncio.create_task(
                load.client(session, students[n::WORKERS], seed=drill.round * 1000 + n)
            )
            for n in range(WORKERS)
        ]
        clients.append(asyncio.create_task(load.probe(session, probe_student, probe_course)))
        feed = asyncio.create_task(load.follow_feed(session, feed_done))
        watcher = asyncio.create_task(watch_leader(cluster, drill, watching))
        await asyncio.sleep(WARM_UP)
        await asyncio.to_thread(break_something, cluster, drill)
        if drill.scenario == "etcd":
            # Writes go on until the leader gives up its key (retry_timeout),
            # and are back once etcd is: counted from then.
            await asyncio.sleep(max(0.0, drill.broke_at + ETCD_DOWN - time.monotonic()))
            await asyncio.to_thread(cluster.start_etcd)
            drill.restored_at = time.monotonic()
        back = await until_written(drill, 60.0)
        if back:
            await asyncio.sleep(AFTER)
            drill.first_write = written_again(drill)
        load.stopping.set()
        await asyncio.gather(*clients)
        watching.set()
        await watcher
        if drill.scenario == "node":
            node = next(
                n for n in cluster.nodes if n.process is None or n.process.poll() is not None
            )
            cluster.start_node(node)
        drill.rejoined = await asyncio.to_thread(cluster.wait_until, cluster.settled, 90, "rejoin")
        feed_done.set()
        await asyncio.wait_for(feed, 60)
    if {worker.pid for worker in service.workers()} != pids or service.process.poll() is not None:
        drill.problems.append("the service's processes changed: it was restarted or crashed")


async def until_written(drill: Drill, within: float) -> bool:
    """Wait until the cluster takes writes again after the break (or etcd's return).

    Back means: a leader with a synchronous standby, and a change
    acknowledged that was sent after that was seen. drill.first_write is
    then written_again()'s.
    """
    started = time.monotonic()
    while time.monotonic() - started < within:
        if writable := await asyncio.to_thread(drill.cluster.writable):
            seen = time.monotonic()
            break
        await asyncio.sleep(0.1)
    if not writable:
        return False
    while time.monotonic() - started < within:
        if any(a.sent > seen for a in changes(drill)):
            drill.first_write = written_again(drill)
            return True
        await asyncio.sleep(0.1)
    return False


def changes(drill: Drill) -> list[Attempt]:
    """The attempts answered with a change made: 201, 204 (a 200 or 202 may be one held
    already, and a replay made its change earlier)."""
    return [
        r.attempts[-1]
        for r in list(drill.requests)
        if r.final in (201, 204) and not r.replayed and r.attempts
    ]


def written_again(drill: Drill) -> float | None:
    """Seconds from the break (from etcd's return) to the end of the longest time without a write.

    The writes acknowledged after the break, by every client and the probe
    (one every 0.1 s), leave one long gap: the outage. Its end is when
    writes were back. Not the first acknowledged after the break: for a
    moment the dying leader's connections may still commit, its standby
    taking their WAL. None when no write was acknowledged after the break.
    """
    since = drill.restored_at or drill.broke_at
    times = sorted(a.answered for a in changes(drill) if a.answered > drill.broke_at)
    if not times:
        return None
    gaps = zip([drill.broke_at, *times], times, strict=False)
    _start, end = max(gaps, key=lambda gap: gap[1] - gap[0])
    return max(0.0, end - since)


def break_something(cluster: Cluster, drill: Drill) -> None:
    leader = cluster.leader()
    if leader is None:
        raise ClusterError("no leader to break")
    drill.broke_at = time.monotonic()
    if drill.scenario == "leader":
        cluster.kill_postmaster(leader)
    elif drill.scenario == "node":
        cluster.kill_node(leader)
    elif drill.scenario == "replica":
        standby = cluster.sync_standby()
        if standby is None:
            raise ClusterError("no synchronous standby to break")
        cluster.kill_postmaster(standby)
    else:
        cluster.stop_etcd()


def changed(request: Request) -> bool:
    """Whether the answer says this request made its change (a 202 may be a place already held).

    The client changes a student's enrollments one request at a time, so a
    place held before is older than the request: its waitlisted_at, set by
    the database's clock, comes before the request was sent.
    """
    if request.final != 202:
        return True
    if request.waitlisted_at is None:
        return False
    return datetime.fromisoformat(request.waitlisted_at).timestamp() >= request.sent_at


def account(drill: Drill, events: dict[tuple[int, int], list[tuple[str, str | None]]]) -> None:
    """Match each student and course's events, in order, with the answers its requests got.

    A client sends one request at a time for a student, so a pair's
    requests are in order, and each change acknowledged made exactly one
    event (EVENT_OF; a replayed answer's change was made by the attempt it
    answered), in the same order. A request that failed first and then
    found its change done (a drop or a waitlist left answered 404) was in
    doubt: its event may be there. Sets drill.lost (an acknowledged change
    without its event), drill.in_doubt, and a problem for events no answer
    accounts for.
    """
    requests: dict[tuple[int, int], list[Request]] = {}
    for request in drill.requests:
        requests.setdefault((request.student, request.course), []).append(request)
    lost, unaccounted = [], 0
    for pair, asked in requests.items():
        seen, at = events.get(pair, []), 0
        for request in asked:
            optional = request.erred and request.final == 404 and request.op in ("drop", "leave")
            if 200 <= request.final < 300:
                event = EVENT_OF.get((request.op, request.final)) if changed(request) else None
                drill.in_doubt += request.erred and request.replayed
            elif optional:
                event = EVENT_OF[(request.op, 204)]
            else:
                continue
            if event is None:
                continue
            if at < len(seen) and seen[at] == event:
                at += 1
                drill.in_doubt += optional
            elif not optional:
                lost.append((*pair, *event))
        unaccounted += len(seen) - at
    drill.lost += len(lost)
    if lost:
        drill.problems.append(f"acknowledged and lost: {len(lost)} events, e.g. {lost[:3]}")
    if unaccounted:
        drill.problems.append(f"{unaccounted} changes no answer accounts for")


async def check(cluster: Cluster, url: str, drill: Drill) -> None:
    """Everything acknowledged is there, the invariants hold, the feed was exact."""
    for request in drill.requests:
        for attempt in request.attempts:
            drill.statuses[attempt.status] += 1
            if attempt.status >= 500 and (
                attempt.status != 503
                or attempt.problem not in ("/problems/database-unavailable", "/problems/busy")
                or not attempt.retry_after
            ):
                drill.problems.append(
                    f"{request.op} answered {attempt.status} {attempt.problem or ''}"
                    f" (Retry-After {attempt.retry_after})"
                )
        if request.final == 0 or request.final == 503:
            drill.problems.append(f"{request.op} of student {request.student} never answered")
    acknowledged = [r for r in drill.requests if 200 <= r.final < 300]
    drill.acknowledged = len(acknowledged)
    students = sorted({r.student for r in drill.requests})
    keys = [r.key for r in acknowledged if r.key]
    conn = await asyncpg.connect(cluster.superuser_dsn.rsplit("/", 1)[0] + "/" + DATABASE)
    try:
        rows = await conn.fetch(
            """
            select student_id, course_id, type, coalesce(data->>'via', data->>'reason') as why
            from events
            where type in ('enrollment.created', 'waitlist.joined',
                           'enrollment.deleted', 'waitlist.left')
              and student_id = any($1::bigint[])
            order by id
            """,
            students,
        )
        events: dict[tuple[int, int], list[tuple[str, str | None]]] = {}
        for row in rows:
            if (row["type"], row["why"]) in EVENT_OF.values():
                events.setdefault((row["student_id"], row["course_id"]), []).append(
                    (row["type"], row["why"])
                )
        drill.in_doubt = drill.lost = 0
        account(drill, events)
        stored = await conn.fetchval(
            "select count(*) from idempotency_keys where key = any($1::text[])", keys
        )
        if stored != len(keys):
            drill.lost += len(keys) - stored
            drill.problems.append(f"acknowledged and lost: {len(keys) - stored} stored answers")
        for name, query in WAITLIST_INVARIANTS.items():
            if broken := await conn.fetch(query):
                drill.problems.append(f"invariant '{name}' broken: {len(broken)} rows")
        queues = await conn.fetch(
            "select course_id, array_agg(student_id order by seq) as queue"
            " from course_waitlist group by course_id"
        )
        ids = [r["id"] for r in await conn.fetch("select id from events order by id")]
    finally:
        await conn.close()
    async with aiohttp.ClientSession() as session:
        for row in queues:
            async with session.get(
                f"{url}/courses/{row['course_id']}/waitlist", params={"limit": "100"}
            ) as response:
                items = (await response.json())["items"]
            if [(i["id"], i["position"]) for i in items] != [
                (s, n) for n, s in enumerate(row["queue"], 1)
            ]:
                drill.problems.append(
                    f"course {row['course_id']}: queue positions not 1..n in order"
                )
    if drill.feed != ids:
        seen, have = Counter(drill.feed), set(ids)
        drill.problems.append(
            "the feed was not exactly once: "
            f"{sum(n - 1 for n in seen.values() if n > 1)} repeated, "
            f"{len(have - set(seen))} missed, {len(set(seen) - have)} seen but not in the database,"
            f" in order: {drill.feed == sorted(drill.feed)}"
        )
    unavailable = sum(
        1
        for r in drill.requests
        for a in r.attempts
        if a.problem == "/problems/database-unavailable"
    )
    if drill.first_write is None:
        drill.problems.append("writes never came back")
    if drill.scenario in BOUNDS:
        bound = BOUNDS[drill.scenario]
        if drill.first_write is not None and drill.first_write > bound:
            drill.problems.append(f"writes not back within {bound:.0f} s")
        if not unavailable and drill.no_leader > 1:
            drill.problems.append("no 503 database-unavailable while there was no leader")


def run(args: argparse.Namespace) -> int:
    # A SIGTERM (CI's timeout, a kill) ends the drill through its teardown
    # below: the cluster's processes run in sessions of their own and would
    # outlive it.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    cluster = Cluster()
    drills: list[Drill] = []
    service = None
    try:
        print(f"cluster up from nothing in {cluster.start():.1f} s", flush=True)
        print(f"the service connects through {args.connect}", flush=True)
        _owner, app_dsn = prepare_database(cluster, args.connect)
        port = free_port()
        log = cluster.workdir / "service.log"
        service = servers.start(
            "service",
            servers.python_module("service", "serve"),
            servers.child_env(
                DATABASE_URL=app_dsn,
                PORT=str(port),
                HOST="127.0.0.1",
                WEB_CONCURRENCY="2",
                LOG_LEVEL="WARNING",
                ACCESS_LOG="false",
                API_TOKENS="",
            ),
            port,
            log,
        )
        servers.wait_ready(service, "/readyz", {})
        for scenario in args.scenarios:
            for n in range(1, args.rounds + 1):
                drill = Drill(scenario, n, cluster)
                asyncio.run(drive(cluster, service.url, drill, service))
                asyncio.run(check(cluster, service.url, drill))
                drills.append(drill)
                extra = f", settled again after {drill.rejoined:.1f} s" if drill.rejoined else ""
                if drill.scenario == "etcd":
                    extra += f", writes stopped after {drill.writes_stopped():.1f} s of etcd down"
                statuses = ", ".join(
                    f"{k or 'no answer'}: {v}" for k, v in sorted(drill.statuses.items())
                )
                print(drill.line(f"{scenario} {n}") + extra + f" [{statuses}]", flush=True)
                for problem in drill.problems:
                    print(f"  FAILED: {problem}", flush=True)
    except Exception as error:
        if not isinstance(error, ClusterError | subprocess.CalledProcessError | RuntimeError):
            traceback.print_exc()
        detail = getattr(error, "stderr", None)
        print(
            f"drill stopped: {error}{(': ' + detail.decode()) if detail else ''}", file=sys.stderr
        )
        return 1
    finally:
        if service is not None:
            servers.stop(service)
        if forced := cluster.stop():
            print(f"teardown had to kill: {', '.join(forced)}", file=sys.stderr)
    total = Drill("all", 0, cluster)
    total.acknowledged = sum(d.acknowledged for d in drills)
    total.lost = sum(d.lost for d in drills)
    total.in_doubt = sum(d.in_doubt for d in drills)
    # The times of the drills that lose the leader; etcd's outage is as long as it is kept down.
    timed = [d for d in drills if d.scenario in BOUNDS] or drills
    total.no_leader = max((d.no_leader for d in timed), default=0.0)
    writes = [d.first_write for d in timed]
    total.first_write = None if None in writes else max(writes, default=0.0)
    print(total.line(), flush=True)
    return 1 if any(d.problems for d in drills) else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.failover", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--scenarios",
        type=lambda text: [s for s in text.split(",") if s],
        default=list(SCENARIOS),
        help=f"comma-separated, among {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--connect",
        choices=("haproxy", "hosts"),
        default="haproxy",
        help="how the service reaches the leader: HAProxy's primary port (default),"
        " or a DSN naming every node with target_session_attrs=read-write",
    )
    parser.add_argument("--rounds", type=int, default=1, help="drills of each scenario (default 1)")
    args = parser.parse_args(argv)
    if unknown := set(args.scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
