"""The servers under test as subprocesses, and the memory of their workers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


@dataclass
class Server:
    name: str
    port: int
    log: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[psutil.Process]:
        """The processes serving requests: the spawned workers, or the process itself."""
        try:
            parent = psutil.Process(self.process.pid)
            # multiprocessing's resource tracker is a child too; workers run spawn_main.
            children = [
                child
                for child in parent.children()
                if any("spawn_main" in part for part in child.cmdline())
            ]
        except psutil.Error:
            return []
        return children or [parent]

    def cpu_seconds(self) -> float:
        """User plus system CPU time used so far by the serving processes."""
        total = 0.0
        for worker in self.workers():
            try:
                times = worker.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total


def start(name: str, command: list[str], env: dict[str, str], port: int, log: Path) -> Server:
    with log.open("wb") as out:
        # The child keeps its own copy of the descriptor.
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Server(name=name, port=port, log=log, process=process)


def wait_ready(server: Server, path: str, headers: dict[str, str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(server.url + path, headers=headers)
    while True:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{server.name} exited ({server.process.returncode}):\n{tail}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} not ready after {timeout:.0f} s; see {server.log}")
        time.sleep(0.2)


def stop(server: Server) -> None:
    """SIGTERM, as a supervisor would; the parent passes it on to its workers."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            for worker in server.workers():
                if worker.pid != server.process.pid:
                    worker.kill()
            server.process.kill()
            server.process.wait()


@dataclass
class Rss:
    first: float
    last: float
    peak: float


@dataclass
class RssSampler:
    """Samples every worker's resident memory once a second, in a thread."""

    servers: list[Server]
    interval: float = 1.0
    samples: dict[str, dict[int, Rss]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        for server in self.servers:
            seen = self.samples.setdefault(server.name, {})
            for worker in server.workers():
                try:
                    rss = worker.memory_info().rss / MIB
                except psutil.Error:
                    continue
                if (entry := seen.get(worker.pid)) is None:
                    seen[worker.pid] = Rss(first=rss, last=rss, peak=rss)
                else:
                    entry.last = rss
                    entry.peak = max(entry.peak, rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def child_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "API_TOKENS_FILE"}
    env.update(overrides)
    return env
