"""Two instances of the real service, two workers each, behind one nginx: they behave as one.

Each instance is `python -m service serve` (tests/test_shutdown.py's `serving()`)
on the test's database, the only thing they share. nginx runs the committed
deploy/nginx/enrollment.conf, with its upstream lines, its port and its log
directory rendered for the test, as the current user, everything it writes in
tmp_path. Every check goes through nginx; nginx's log says which instance
answered each request, and that instance's own log has the request's id.
Skipped when nginx is not installed (.ci/run installs it).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from service.config import Config
from service.embedded import PROJECT_ROOT, free_port
from service.handlers.events import MAX_WAIT

from .api import create_course, create_student
from .test_concurrency import ROUNDS, Answer, burst
from .test_shutdown import HOST, Server, _kill_tree, assert_clean_log, eventually, serving
from .test_waitlists import assert_invariants, queue

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
SITE = PROJECT_ROOT / "deploy" / "nginx" / "enrollment.conf"
needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (apt-get install nginx; .ci/run installs it)"
)
pytestmark = pytest.mark.slow

# Each instance: two workers sharing its port, each with a pool of up to 20
# connections (2 instances x 2 workers x 20 stays well below max_connections).
INSTANCE = {"WEB_CONCURRENCY": "2", "DB_POOL_MIN_SIZE": "1", "DB_POOL_MAX_SIZE": "20"}
NGINX_ID = re.compile(r"[0-9a-f]{32}")
ENROLL = re.compile(r"/students/\d+/courses")


# -- the committed file, rendered --------------------------------------------------------


def render_site(upstreams: list[int], port: int, logs: Path) -> str:
    """deploy/nginx/enrollment.conf with the test's instances, port and log directory."""
    text = SITE.read_text(encoding="utf-8")
    ports = iter(upstreams)
    text, servers = re.subn(
        r"(?m)^(\s*server )\S+:\d+", lambda m: f"{m[1]}{HOST}:{next(ports)}", text
    )
    assert servers == len(upstreams), "the upstream no longer has one server line per instance"
    text, listens = re.subn(r"(?m)^(\s*listen )\d+;", rf"\g<1>{HOST}:{port};", text)
    assert listens == 1, "the server block no longer has one `listen PORT;` line"
    assert text.count("/var/log/nginx/") == 1, "the access log is no longer in /var/log/nginx/"
    return text.replace("/var/log/nginx/", f"{logs}/")


def _compiled_without(module: str) -> bool:
    built = subprocess.run([NGINX, "-V"], capture_output=True, text=True, check=False).stderr
    return f"--without-http_{module}_module" in built


def main_config(workdir: Path, site: Path) -> str:
    """An nginx.conf around the site whose pid, logs and temporary files are all in `workdir`."""
    temp = [f"client_body_temp_path {workdir}/client_body;", f"proxy_temp_path {workdir}/proxy;"]
    temp += [
        f"{module}_temp_path {workdir}/{module};"
        for module in ("fastcgi", "uwsgi", "scgi")
        if not _compiled_without(module)
    ]
    lines = [
        # As root the master would hand the workers to `nobody`, who cannot
        # enter tmp_path: keep them with the current user.
        *(["user root;"] if os.geteuid() == 0 else []),
        "worker_processes 2;",
        f"pid {workdir}/nginx.pid;",
        f"error_log {workdir}/error.log notice;",
        "events { worker_connections 1024; }",
        "http {",
        *(f"    {line}" for line in temp),
        f"    include {site};",
        "}",
    ]
    return "\n".join(lines) + "\n"


# -- nginx in front of two instances -----------------------------------------------------


@dataclass
class Balanced:
    url: str
    instances: tuple[Server, Server]
    access_log: Path
    error_log: Path

    def upstream(self, server: Server) -> str:
        return f"{HOST}:{server.port}"

    def lines(self) -> list[dict[str, Any]]:
        """nginx's access lines so far, one JSON object each."""
        if not self.access_log.exists():
            return []
        text = self.access_log.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    async def logged(self, request_ids: set[str]) -> dict[str, str]:
        """upstream -> ids, once nginx and the instances have logged every id in `request_ids`."""
        by_id: dict[str, str] = {}

        async def probe() -> bool:
            nonlocal by_id
            by_id = {
                e["request_id"]: e["upstream"]
                for e in self.lines()
                if e["request_id"] in request_ids
            }
            served = set().union(*(instance_ids(s) for s in self.instances))
            return by_id.keys() == request_ids and request_ids <= served

        await eventually(probe, 5, "every request in nginx's log and in one instance's log")
        return by_id


def instance_ids(server: Server) -> set[str]:
    """The request ids of the access lines an instance has written so far."""
    ids = set()
    for line in server.log().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line being written; any other is the instance's business
        if isinstance(entry, dict) and entry.get("logger") == "service.access":
            ids.add(entry["request_id"])
    return ids


@asynccontextmanager
async def nginx_in_front(instances: tuple[Server, Server], tmp_path: Path) -> AsyncIterator[str]:
    """nginx on a free port, proxying to `instances`, until the block ends."""
    assert NGINX is not None
    workdir = tmp_path / "nginx"
    workdir.mkdir()
    port = free_port()
    site = workdir / "enrollment.conf"
    site.write_text(render_site([s.port for s in instances], port, workdir), encoding="utf-8")
    conf = workdir / "nginx.conf"
    conf.write_text(await asyncio.to_thread(main_config, workdir, site), encoding="utf-8")
    error_log = workdir / "error.log"
    command = [NGINX, "-p", f"{workdir}/", "-c", str(conf), "-e", str(error_log)]
    tested = await asyncio.to_thread(
        subprocess.run, [*command, "-t"], capture_output=True, text=True, check=False
    )
    assert tested.returncode == 0, tested.stderr
    process = await asyncio.create_subprocess_exec(
        *command,
        "-g",
        "daemon off;",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://{HOST}:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:

            async def answers() -> bool:
                assert process.returncode is None, error_log.read_text()
                try:
                    async with session.get(f"{url}/healthz") as response:
                        return response.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    return False

            await eventually(answers, 10, "nginx answers /healthz")
        yield url
    finally:
        if process.returncode is None:
            process.terminate()  # SIGTERM: nginx's fast shutdown
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                pass
        await _kill_tree(process)
    log = error_log.read_text(encoding="utf-8", errors="replace")
    # Never an upstream failure: no refused or reset connection, no timeout.
    assert not re.search(r"\[(error|crit|alert|emerg)\]", log), log


@asynccontextmanager
async def two_instances(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Server, Server]]:
    """Two instances on the same database, started side by side, both killed at the end."""
    async with AsyncExitStack() as stack:
        # Each serving() cleans up after itself if it fails to start; the stack
        # stops those that did start.
        started = await asyncio.gather(
            *(stack.enter_async_context(serving(database_url, tmp_path, **INSTANCE)) for _ in "ab"),
            return_exceptions=True,
        )
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome
        first, second = started
        yield first, second
        # A clean stop, once nginx is gone: exit 0, and no error logged all along.
        for server in started:
            server.process.send_signal(signal.SIGTERM)
        for server in started:
            assert await server.exited(within=15) == 0
            assert_clean_log(server)


@pytest.fixture
async def balanced(database_url: str, tmp_path: Path) -> AsyncIterator[Balanced]:
    async with (
        two_instances(database_url, tmp_path) as instances,
        nginx_in_front(instances, tmp_path) as url,
    ):
        workdir = tmp_path / "nginx"
        yield Balanced(url, instances, workdir / "enrollment.access.log", workdir / "error.log")


class Through:
    """The part of aiohttp's TestClient the tests' helpers use, over HTTP to a URL.

    Lets tests/api.py, test_concurrency.burst and test_waitlists' helpers talk to
    the load balancer. get, post, patch and delete read the body before they
    return, so the connection goes back to the pool at once.
    """

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    def request(self, method: str, path: str, **kwargs: Any):
        return self.session.request(method, path, **kwargs)

    async def _read(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        async with self.session.request(method, path, **kwargs) as response:
            await response.read()
        return response

    async def get(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self._read("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self._read("POST", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self._read("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self._read("DELETE", path, **kwargs)


@pytest.fixture
async def lb(balanced: Balanced) -> AsyncIterator[Through]:
    timeout = aiohttp.ClientTimeout(total=MAX_WAIT + 15)
    async with aiohttp.ClientSession(balanced.url, timeout=timeout) as session:
        yield Through(session)


async def page_of_events(lb: Through, request_id: str, **params: Any) -> dict[str, Any]:
    headers = {"X-Request-ID": request_id}
    async with lb.session.get("/events", params=params, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.headers["X-Request-ID"] == request_id
        return await response.json()


async def cursor_now(lb: Through) -> str:
    """A cursor past every event the feed serves now."""
    params: dict[str, Any] = {"limit": 1000}
    for n in range(100):
        page = await page_of_events(lb, f"drain-{time.monotonic_ns()}-{n}", **params)
        params["cursor"] = page["next_cursor"]
        if not page["items"]:
            return page["next_cursor"]
    pytest.fail("the feed did not run dry")


# -- the committed file ------------------------------------------------------------------


def test_the_committed_config_outlasts_the_longest_long_poll_and_the_keepalive():
    text = SITE.read_text(encoding="utf-8")
    events = re.search(r"location = /events \{(.*?)\}", text, re.S)
    assert events, "no `location = /events` block"
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", events[1])[1])
    config = Config()
    # The longest wait, then one page read: waiting for a connection and the statement.
    assert read_timeout > MAX_WAIT + config.acquire_timeout + config.statement_timeout
    upstream = re.search(r"upstream enrollment \{(.*?)\n\}", text, re.S)[1]
    # nginx drops an idle upstream connection before the instance does.
    assert int(re.search(r"keepalive_timeout (\d+)s;", upstream)[1]) < config.keepalive_timeout
    assert re.search(r"(?m)^\s*keepalive \d+;", upstream)
    assert 'proxy_set_header Connection "";' in text and "proxy_http_version 1.1;" in text
    assert "proxy_set_header X-Request-ID $enrollment_request_id;" in text
    # A POST, PATCH or DELETE is never sent twice.
    retries = re.findall(r"(?m)^\s*proxy_next_upstream [^;]*;", text)
    assert retries and not any("non_idempotent" in r for r in retries), retries


def test_the_operations_guide_shows_the_committed_config_without_its_comments():
    guide = (PROJECT_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    shown = re.search(r"```nginx\n(.*?)```", guide, re.S)
    assert shown, "docs/operations.md shows no nginx configuration"
    lines = []
    for line in SITE.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#"):
            continue
        line = re.sub(r"\s+# .*$", "", line)
        if line or (lines and lines[-1]):
            lines.append(line)
    assert shown[1].strip() == "\n".join(lines).strip()


# -- through nginx -----------------------------------------------------------------------


@needs_nginx
async def test_requests_reach_both_instances_each_logged_once_under_its_request_id(balanced, lb):
    sent = [f"spread-{n}" for n in range(20)]
    for request_id in sent:
        response = await lb.get("/students", headers={"X-Request-ID": request_id})
        assert response.status == 200
        assert response.headers["X-Request-ID"] == request_id
    # Without an id, or with one the service would refuse, nginx makes one
    # (the same in both logs and in the response).
    generated = []
    for headers in ({}, {"X-Request-ID": "abc 123"}, {"X-Request-ID": "x" * 129}):
        response = await lb.get("/courses", headers=headers)
        assert response.status == 200
        assert NGINX_ID.fullmatch(response.headers["X-Request-ID"]), response.headers
        generated.append(response.headers["X-Request-ID"])

    by_id = await balanced.logged(set(sent + generated))

    first, second = balanced.instances
    served = {balanced.upstream(s): instance_ids(s) for s in (first, second)}
    for request_id, upstream in by_id.items():
        # The instance nginx names logged it, the other one did not.
        assert [u for u, ids in served.items() if request_id in ids] == [upstream], request_id
    # Round robin: one after another, the instances take turns.
    counts = {u: sum(1 for r in sent if by_id[r] == u) for u in served}
    assert counts == {u: 10 for u in served}, counts


@needs_nginx
async def test_thirty_students_at_once_then_five_drops_through_the_load_balancer(balanced, lb, db):
    for _ in range(ROUNDS):
        full = await create_course(lb, capacity=5, waitlist_capacity=10)
        students = [await create_student(lb) for _ in range(30)]
        path = "/students/{}/courses"
        body = {"course_id": full["id"], "waitlist": True}

        answers = await burst(lb, [("POST", path.format(s["id"]), body) for s in students])

        by_status: dict[int, list[tuple[dict, Answer]]] = {}
        for student, answer in zip(students, answers, strict=True):
            by_status.setdefault(answer.status, []).append((student, answer))
        assert {k: len(v) for k, v in by_status.items()} == {201: 5, 202: 10, 409: 15}
        assert all(a.body["type"] == "/problems/waitlist-full" for _, a in by_status[409])
        waiting = [s for s, _ in sorted(by_status[202], key=lambda sa: sa[1].body["position"])]
        assert sorted(a.body["position"] for _, a in by_status[202]) == list(range(1, 11))
        assert await queue(lb, full["id"]) == [(s["id"], n) for n, s in enumerate(waiting, 1)]

        seated = [s for s, _ in by_status[201]]
        drops = [("DELETE", f"/students/{s['id']}/courses/{full['id']}", None) for s in seated]
        answers = await burst(lb, drops)

        assert [a.status for a in answers] == [204] * 5
        enrolled = await db.fetch(
            "select student_id from student_courses where course_id = $1", full["id"]
        )
        assert {r["student_id"] for r in enrolled} == {s["id"] for s in waiting[:5]}
        assert await queue(lb, full["id"]) == [(s["id"], n) for n, s in enumerate(waiting[5:], 1)]
    await assert_invariants(lb, db)

    # The bursts really were split between the instances (of 5 at once, one
    # nginx worker has at least 3, which its round robin spreads).
    upstreams = {balanced.upstream(s) for s in balanced.instances}
    lines = balanced.lines()
    joins = [e for e in lines if e["method"] == "POST" and ENROLL.fullmatch(e["uri"])]
    drops_logged = [e for e in lines if e["method"] == "DELETE"]
    assert (len(joins), len(drops_logged)) == (ROUNDS * 30, ROUNDS * 5)
    assert {e["upstream"] for e in joins} == upstreams
    assert {e["upstream"] for e in drops_logged} == upstreams


# -- the feed, across instances ---------------------------------------------------------


async def a_long_poll_wakes_when_the_other_instance_writes(balanced: Balanced, lb: Through) -> None:
    """A poll through nginx; a write straight to the first instance, until a poll was on the second."""
    first, second = balanced.instances
    writer = aiohttp.ClientSession(first.url, timeout=aiohttp.ClientTimeout(total=10))
    waits: dict[str, float] = {}  # the upstream of a poll -> how long it waited
    try:
        # One poll after another on one connection to nginx: round robin sends
        # them to the instances in turn (so the second within two polls).
        cursor = await cursor_now(lb)
        for n in range(6):
            request_id = f"poll-{n}"
            started = time.monotonic()
            poll = asyncio.create_task(page_of_events(lb, request_id, cursor=cursor, wait=10))
            await asyncio.sleep(0.5)  # the poll waits by now
            assert not poll.done(), poll.result()
            made = await create_student(Through(writer))  # straight to the first instance
            page = await poll
            waited = time.monotonic() - started
            assert [(e["type"], e["student_id"]) for e in page["items"]] == [
                ("student.created", made["id"])
            ]
            assert 0.4 < waited < 3, waited
            cursor = page["next_cursor"]
            upstream = (await balanced.logged({request_id}))[request_id]
            waits.setdefault(upstream, waited)
            if len(waits) == 2:
                break
    finally:
        await writer.close()
    # A poll on the first instance woke, and so did one on the second, whose
    # watcher learnt of the first instance's write from the database.
    assert waits.keys() == {balanced.upstream(first), balanced.upstream(second)}, waits


async def a_follower_sees_every_event_once_in_order(balanced: Balanced, lb: Through, db) -> None:
    """Writers at once through nginx; a follower of the feed through nginx too."""
    course = await create_course(lb, capacity=20, waitlist_capacity=50)
    students = [await create_student(lb) for _ in range(60)]
    seen: list[int] = []
    asked: list[str] = []
    writing = True

    async def follow() -> None:
        cursor = None
        while True:
            request_id = f"follow-{len(asked)}"
            asked.append(request_id)
            params = {"limit": 13, "wait": 1, **({"cursor": cursor} if cursor else {})}
            page = await page_of_events(lb, request_id, **params)
            seen.extend(e["id"] for e in page["items"])
            cursor = page["next_cursor"]
            if not writing and not page["items"]:
                return

    follower = asyncio.create_task(follow())
    rng = random.Random(17)
    deadline = time.monotonic() + 3
    answered: list[Answer] = []
    while time.monotonic() < deadline:
        requests = []
        for _ in range(25):
            s = rng.choice(students)["id"]
            if rng.random() < 0.6:
                body = {"course_id": course["id"], "waitlist": True}
                requests.append(("POST", f"/students/{s}/courses", body))
            else:
                requests.append(("DELETE", f"/students/{s}/courses/{course['id']}", None))
        answered += await burst(lb, requests)
    writing = False
    await asyncio.wait_for(follower, 30)

    assert all(a.status in (200, 201, 202, 204, 404, 409) for a in answered), [
        (a.status, a.body) for a in answered if a.status not in (200, 201, 202, 204, 404, 409)
    ]
    committed = [r["id"] for r in await db.fetch("select id from events order by id")]
    assert seen, "the follower saw nothing"
    assert len(seen) == len(set(seen)), "an event was seen twice"
    assert seen == sorted(seen), "events came out of order"
    # It started at the beginning of the feed: every event, the setup's included.
    assert seen == committed
    # Its polls went to both instances, and so did the writes.
    upstreams = {balanced.upstream(s) for s in balanced.instances}
    by_id = await balanced.logged(set(asked))
    assert set(by_id.values()) == upstreams
    writes = [e for e in balanced.lines() if e["method"] in ("POST", "DELETE")]
    assert {e["upstream"] for e in writes} == upstreams


@needs_nginx
async def test_the_feed_through_the_load_balancer_wakes_long_polls_and_serves_each_event_once(
    balanced, lb, db
):
    await a_long_poll_wakes_when_the_other_instance_writes(balanced, lb)
    await a_follower_sees_every_event_once_in_order(balanced, lb, db)
