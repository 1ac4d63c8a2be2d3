"""A small pool of worker processes for the playground: each runs one request at a time under
the request limits (:class:`rewrite.web.settings.Settings`) and an address-space limit
(``RLIMIT_AS``); a request still running at its deadline has its worker killed and replaced,
and a worker that dies (out of memory, a crash) is replaced too. Requests never share a
process's state while they run, and one bad request cannot take the server down.

The pool is synchronous (:meth:`WorkerPool.call` blocks); the web application calls it from
threads. Workers are started with ``spawn``, so they import nothing of the server.

>>> pool = WorkerPool(size=1)
>>> pool.call("gradient", {"expr": "tr(A*X)", "wrt": "X", "shapes": {"A": [2, 3], "X": [3, 2]}})[1]["gradient"]
"A'"
>>> pool.close()
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import time
from dataclasses import dataclass, field

from .settings import Settings

#: a warm-up request each worker runs before taking requests (compiles the rules)
WARM_UP = ("gradient", {"expr": "tr(X'*A*X)", "wrt": "X", "shapes": {"X": [3, 2], "A": [3, 3]}})


def error(kind: str, message: str) -> dict:
    """An error body, as :meth:`rewrite.errors.TracegradError.to_json` gives it."""
    return {"error": {"kind": kind, "message": message, "position": None}}


def worker_main(conn, settings: Settings, address_space_mb: float) -> None:
    """A worker's loop: limit the address space, warm up, then answer ``(op, payload)``
    messages with ``(status, body)`` until the connection closes."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: fewer threads and mappings
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if address_space_mb > 0:
        import resource

        cap = int(address_space_mb * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from .api import answer

    answer(*WARM_UP, settings)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        op, payload = message
        conn.send(answer(op, payload, settings))


@dataclass
class Worker:
    """One worker process and the parent's end of its pipe."""

    process: mp.process.BaseProcess
    conn: object
    ready: bool = False
    served: int = field(default=0)

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def stop(self) -> None:
        """Kill the process (if alive) and reap it."""
        try:
            self.conn.close()
        except OSError:
            pass
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)


class WorkerPool:
    """``size`` worker processes; :meth:`call` runs a request on an idle one (waiting at most
    ``queue_timeout`` seconds for one) and returns ``(status, body)``.

    Statuses: 200 and 400 from the request itself (:func:`rewrite.web.api.answer`); 503 when no
    worker became free in time or the worker died; 504 when the request ran past ``deadline``
    seconds (its worker is killed and replaced). A worker that has served ``max_requests``
    requests is replaced by a fresh one."""

    def __init__(self, size: int = 2, settings: Settings | None = None, deadline: float = 20.0,
                 address_space_mb: float = 3072.0, queue_timeout: float = 60.0,
                 start_timeout: float = 120.0, max_requests: int = 1000) -> None:
        self.settings = settings or Settings()
        self.deadline = deadline
        self.address_space_mb = address_space_mb
        self.queue_timeout = queue_timeout
        self.start_timeout = start_timeout
        self.max_requests = max_requests
        self.context = mp.get_context("spawn")
        self.idle: queue.Queue[Worker] = queue.Queue()
        self.lock = threading.Lock()
        self.workers: list[Worker] = []
        self.closed = False
        for _ in range(size):
            self.idle.put(self.spawn())

    def spawn(self) -> Worker:
        """Start a worker process (it warms up in the background)."""
        parent, child = self.context.Pipe()
        p = self.context.Process(target=worker_main, args=(child, self.settings, self.address_space_mb),
                                 daemon=True, name="tracegrad-worker")
        p.start()
        child.close()
        w = Worker(p, parent)
        with self.lock:
            self.workers.append(w)
        return w

    def replace(self, w: Worker) -> Worker:
        """Stop ``w`` and start another in its place."""
        w.stop()
        with self.lock:
            if w in self.workers:
                self.workers.remove(w)
        return self.spawn()

    def pids(self) -> list[int]:
        """The process ids of the live workers."""
        with self.lock:
            return [w.pid for w in self.workers if w.pid is not None and w.process.is_alive()]

    def wait_ready(self, w: Worker) -> bool:
        """Wait for a new worker's warm-up to finish; False when it died or took too long."""
        if w.ready:
            return True
        try:
            if w.conn.poll(self.start_timeout):
                w.ready = w.conn.recv()[0] == "ready"
        except (EOFError, OSError):
            return False
        return w.ready

    def call(self, op: str, payload: object) -> tuple[int, dict]:
        """Run one request on an idle worker: ``(status, body)``."""
        if self.closed:
            return 503, error("unavailable", "the server is shutting down")
        try:
            w = self.idle.get(timeout=self.queue_timeout)
        except queue.Empty:
            return 503, error("unavailable", f"every worker stayed busy for {self.queue_timeout:g} s; "
                                             "try again")
        try:
            if not self.wait_ready(w):
                w = self.replace(w)
                return 503, error("unavailable", "a worker failed to start; try again")
            start = time.monotonic()
            try:
                w.conn.send((op, payload))
                if w.conn.poll(self.deadline):
                    status, body = w.conn.recv()
                    w.served += 1
                    return status, body
            except (EOFError, OSError):  # the worker died: out of memory, or a crash
                w = self.replace(w)
                return 503, error("limit", "the computation stopped the worker (out of memory?); "
                                           "a new worker has taken its place")
            w = self.replace(w)
            return 504, error("limit", f"no answer within {time.monotonic() - start:.0f} s (the "
                                       f"deadline is {self.deadline:g} s); the computation was stopped")
        finally:
            if self.closed:
                w.stop()
            else:
                if w.served >= self.max_requests:  # a fresh process now and then: no slow growth
                    w = self.replace(w)
                self.idle.put(w)

    def close(self) -> None:
        """Stop every worker."""
        self.closed = True
        with self.lock:
            workers, self.workers = list(self.workers), []
        for w in workers:
            try:
                w.conn.send(None)
            except OSError:
                pass
            w.process.join(2)
            w.stop()
