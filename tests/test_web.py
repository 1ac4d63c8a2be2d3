"""The web playground (``tracegrad serve``, docs/web.md): the JSON API through Starlette's test
client (answers checked numerically, errors typed and positioned, limits, unknown routes), the
worker pool (a deadline kills and replaces a worker, a dead worker is replaced), and a load test
of the real server (uvicorn in a subprocess): 200 requests from 8 threads, valid and hostile
(tests/data/hostile.json), every answer equal to the in-process API's, memory bounded."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import stop_server

import rewrite as rw
from rewrite.web.api import EXAMPLES, answer
from rewrite.web.settings import Settings

pytest.importorskip("starlette", reason="the web extra is not installed (pip install 'tracegrad[web]')")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")

with warnings.catch_warnings():  # starlette's test client says it prefers httpx2 to httpx
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from rewrite.web.app import KATEX, LOOPBACK_HOSTS, STATIC, ServeConfig, create_app  # noqa: E402
from rewrite.web.workers import WorkerPool  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
HOSTS = LOOPBACK_HOSTS + ("testserver",)


def artifacts() -> Path:
    """Where tests leave files to look at (``TRACEGRAD_ARTIFACTS``, else tests/artifacts/)."""
    out = Path(os.environ.get("TRACEGRAD_ARTIFACTS") or Path(__file__).parent / "artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def client():
    # e-graphs of earlier tests in this process are freed here, on their own thread, not by a
    # collection that happens to run on the test client's event-loop thread
    gc.collect()
    with TestClient(create_app(ServeConfig(hosts=HOSTS))) as c:
        yield c
    gc.collect()


def post(client, op: str, payload) -> tuple[int, dict]:
    r = client.post(f"/api/{op}", json=payload)
    return r.status_code, r.json()


def numeric_gradient(f, env: dict, wrt: str, h: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar function ``f(**env)`` in ``env[wrt]``."""
    x = env[wrt]
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        out[idx] = (float(f(**{**env, wrt: x + e})) - float(f(**{**env, wrt: x - e}))) / (2 * h)
    return out


# -- the API -------------------------------------------------------------------------------

@pytest.mark.parametrize("expr, wrt, shapes", [
    ("tr(X'*A*X)", "X", {"X": [4, 3], "A": [4, 4]}),
    ("norm2sq(X*w - y)", "w", {"X": [5, 3], "w": [3], "y": [5]}),
    ("logdet(X'*X) + sum(relu(X*b))", "X", {"X": [4, 3], "b": [3]}),
])
def test_gradient_agrees_with_finite_differences(client, expr, wrt, shapes):
    status, body = post(client, "gradient", {"expr": expr, "wrt": wrt, "shapes": shapes})
    assert status == 200, body
    assert body["expr"] == expr and body["wrt"] == wrt and body["report"]["stop_reason"] == "goal"
    assert body["shape"] == shapes[wrt] + [1] * (2 - len(shapes[wrt]))
    rng = np.random.default_rng(1)
    env = {k: rng.standard_normal([*v, 1][:2] if len(v) == 1 else v) for k, v in shapes.items()}
    tup = {k: tuple(v) for k, v in shapes.items()}
    G = rw.parse(body["gradient"], tup).numpy()(**env)  # the server's text, read back
    fd = numeric_gradient(rw.parse(expr, tup).numpy(), env, wrt)
    assert G.shape == fd.shape == env[wrt].shape
    assert np.allclose(G, fd, rtol=1e-5, atol=1e-6)


def test_gradient_extras(client):
    status, body = post(client, "gradient", {"expr": "tr(X'*A*X)", "wrt": "X", "shapes": {
        "X": ["n", "k"], "A": ["n", "n"]}, "steps": True, "code": True, "display": True, "check": True})
    assert status == 200, body
    assert body["gradient"] == "(A + A')*X" and body["shape"] == ["n", "k"]
    assert body["steps"][0] == {"quantity": "f", "expr": "tr(X'*A*X)", "phase": "input", "rules": []}
    assert body["steps"][-1]["quantity"] == "G" and body["steps"][-1]["expr"] == "(A + A')*X"
    assert set(body["code"]) == {"numpy", "jax", "torch"} and "def f_and_grad(" in body["code"]["numpy"]
    assert body["display"]["wrt"] == "X" and "operatorname{tr}" in body["display"]["objective"]
    assert body["check"]["relative_error"] < 1e-5


def test_symmetric_variable(client):
    status, body = post(client, "gradient", {"expr": "tr(S*A)", "wrt": "S", "shapes": {
        "S": ["n", "n"], "A": ["n", "n"]}, "structure": {"S": "symmetric"}})
    assert status == 200 and body["gradient"] == "0.5*(A' + A)"


def test_second_order(client):
    status, body = post(client, "hessian", {"expr": "x'*A*x", "wrt": "x", "shapes": {
        "x": ["n"], "A": ["n", "n"]}, "check": True})
    assert status == 200, body
    assert (body["kind"], body["result"], body["shape"]) == ("hessian", "A + A'", ["n", "n"])
    assert body["check"]["relative_error"] < 1e-5
    status, body = post(client, "hvp", {"expr": "logdet(S)", "wrt": "S", "shapes": {"S": [3, 3]}})
    assert status == 200 and body["result"] == "-inv(S)'*V'*inv(S)'" and body["direction"] == "V"
    status, body = post(client, "jacobian", {"expr": "A*X*B", "wrt": "X", "shapes": {
        "A": ["m", "n"], "X": ["n", "p"], "B": ["p", "q"]}})
    assert status == 200 and body["result"] == "kron(B', A)"


def test_simplify_and_equivalent(client):
    assert post(client, "simplify", {"expr": "tr(A') + tr(A)", "shapes": {"A": ["n", "n"]}}) == (
        200, {"expr": "tr(A') + tr(A)", "simplified": "2*tr(A)", "latex": "2 \\operatorname{tr}\\left(A\\right)"})
    status, body = post(client, "equivalent", {"expr": "tr(A*B*C)", "other": "tr(C*A*B)"})
    assert status == 200 and body["equivalent"] is True
    status, body = post(client, "equivalent", {"expr": "det(2*A)", "other": "8*det(A)", "shapes": {"A": [3, 3]}})
    assert status == 200 and body["equivalent"] is None


def test_variables(client):
    status, body = post(client, "variables", {"expr": "tr(X'*A*X) + c*sum(w)", "shapes": {"c": []}})
    assert status == 200
    assert body["variables"] == [{"name": "A", "shape": ["d1", "d1"], "kind": "matrix"},
                                 {"name": "X", "shape": ["d1", "d2"], "kind": "matrix"},
                                 {"name": "c", "shape": [], "kind": "scalar"},
                                 {"name": "w", "shape": ["d3", "d4"], "kind": "matrix"}]


@pytest.mark.parametrize("expr, kind, position, words", [
    ("tr(X'*A*X", "parse", {"line": 1, "column": 10}, "missing ')'"),
    ("A*B", "shape", {"line": 1, "column": 1}, "left is 2×3, right is 4×5"),
    ("foo(X)", "unsupported", {"line": 1, "column": 1}, "foo"),
])
def test_errors_are_typed_and_positioned(client, expr, kind, position, words):
    status, body = post(client, "gradient", {"expr": expr, "wrt": "X" if "X" in expr else "A",
                                             "shapes": {"A": [2, 3], "B": [4, 5]} if kind == "shape" else {}})
    assert status == 400
    assert body["error"]["kind"] == kind and body["error"]["position"] == position
    assert words in body["error"]["message"]


def test_request_errors(client):
    status, body = post(client, "gradient", {"expr": "x" * 2001, "wrt": "x"})
    assert status == 400 and body["error"]["kind"] == "limit" and "2000" in body["error"]["message"]
    r = client.post("/api/gradient", content=json.dumps({"expr": "x" * 20_000, "wrt": "x"}),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["kind"] == "limit"
    for payload in ([1, 2], {"expr": 3, "wrt": "X"}, {"expr": "tr(X)", "wrt": "X", "shapes": {"X": [1, 2, 3]}},
                    {"expr": "tr(X)", "wrt": "X", "shapes": {"X": [10**9, 2]}},
                    {"expr": "tr(X)", "wrt": "X", "shapes": {"X": ["n m", 2]}},
                    {"expr": "tr(X)", "wrt": "X", "steps": "yes"}):
        status, body = post(client, "gradient", payload)
        assert status == 400 and body["error"]["kind"] == "request", (payload, body)
    r = client.post("/api/gradient", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["kind"] == "request"
    r = client.post("/api/gradient", content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415


def test_unknown_routes_and_methods(client):
    for r, status in ((client.get("/nope"), 404), (client.post("/api/nope", json={}), 404),
                      (client.get("/api/gradient"), 405)):
        assert r.status_code == status and r.json()["error"]["kind"] in ("not-found", "method-not-allowed")
    assert client.get("/", headers={"host": "attacker.example"}).status_code == 400  # DNS rebinding


def test_page_and_vendored_files(client):
    r = client.get("/")
    assert r.status_code == 200 and "tracegrad playground" in r.text
    assert "connect-src 'self'" in r.headers["content-security-policy"]
    page = "".join((STATIC / f).read_text(encoding="utf-8") for f in ("index.html", "app.js", "app.css"))
    assert "http://" not in page and "https://" not in page  # nothing loaded from the internet
    css = (KATEX / "katex.min.css").read_text(encoding="utf-8")
    fonts = set(__import__("re").findall(r"url\((fonts/[^)]+)\)", css))
    assert fonts and all((KATEX / f).is_file() for f in fonts) and all(f.endswith(".woff2") for f in fonts)
    for path in ("/vendor/katex/katex.min.js", "/vendor/katex/katex.min.css", "/static/app.js",
                 "/vendor/katex/" + sorted(fonts)[0]):
        assert client.get(path).status_code == 200, path
    assert (KATEX / "LICENSE").is_file() and (KATEX / "update.sh").is_file()


def test_examples_all_answer(client):
    r = client.get("/api/examples")
    assert r.status_code == 200 and r.json()["examples"] == EXAMPLES
    for ex in EXAMPLES:
        payload = {k: v for k, v in ex.items() if k not in ("title", "op")}
        status, body = post(client, ex["op"], payload)
        assert status == (400 if "error" in ex["title"] else 200), (ex, body)


def test_viz_page_and_failure_view(client):
    status, body = post(client, "viz", {"expr": "tr(X'*A*X)", "wrt": "X", "shapes": {"X": [3, 2], "A": [3, 3]}})
    assert status == 200 and body["error"] is None and body["classes"] <= body["total"]
    assert body["html"].lower().startswith("<!doctype html>") and "WebAssembly" in body["html"]
    status, body = post(client, "viz", {"expr": "sum(kront(A, X))", "wrt": "X",
                                        "shapes": {"A": [2, 2], "X": [2, 2]}})
    assert status == 200 and body["error"]["kind"] == "unsupported" and "kront" in body["html"]
    status, body = post(client, "viz", {"expr": "tr(X", "wrt": "X"})
    assert status == 400 and body["error"]["kind"] == "parse"


def test_a_limit_is_an_error_and_the_server_goes_on():
    config = ServeConfig(settings=Settings(enodes=300), workers=1, hosts=HOSTS)
    with TestClient(create_app(config)) as c:
        status, body = post(c, "gradient", {"expr": "tr(" + "*".join(["X", "X'"] * 40) + ")", "wrt": "X",
                                            "shapes": {"X": [3, 3]}})
        assert status == 400 and body["error"]["kind"] == "limit" and "node-limit" in body["error"]["message"]
        assert post(c, "gradient", {"expr": "tr(A*X)", "wrt": "X"})[1]["gradient"] == "A'"


def test_a_deadline_kills_and_replaces_the_worker():
    pool = WorkerPool(size=1, settings=Settings(seconds=60), deadline=0.2)
    try:
        assert pool.call("variables", {"expr": "tr(X)"})[0] == 200
        before = pool.pids()
        status, body = pool.call("gradient", {"expr": "tr(" + "*".join(["X", "X'"] * 60) + ")", "wrt": "X",
                                              "steps": True, "code": True})
        assert status == 504 and body["error"]["kind"] == "limit" and "deadline" in body["error"]["message"]
        pool.deadline = 60  # the next request must not race a short deadline on a busy machine
        status, body = pool.call("variables", {"expr": "tr(X)"})
        assert status == 200, body
        assert pool.pids() != before and len(pool.pids()) == 1
    finally:
        pool.close()


def test_a_dead_worker_is_replaced():
    pool = WorkerPool(size=1)
    try:
        assert pool.call("variables", {"expr": "tr(X)"})[0] == 200
        (pid,) = pool.pids()
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        status, body = pool.call("gradient", {"expr": "tr(A*X)", "wrt": "X"})
        assert status == 503 and body["error"]["kind"] == "limit"
        status, body = pool.call("gradient", {"expr": "tr(A*X)", "wrt": "X"})
        assert status == 200 and body["gradient"] == "A'" and pool.pids() != [pid]
    finally:
        pool.close()


def test_workers_are_recycled():
    pool = WorkerPool(size=1, max_requests=2)
    try:
        first = pool.pids()
        for _ in range(2):
            assert pool.call("variables", {"expr": "tr(X)"})[0] == 200
        assert pool.pids() != first and pool.call("variables", {"expr": "tr(X)"})[0] == 200
    finally:
        pool.close()


def test_serve_without_the_web_extra(monkeypatch, capsys):
    from rewrite.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    assert main(["serve", "--port", "1"]) == 2
    assert capsys.readouterr().err.strip() == \
        "tracegrad: error: serve needs the web extra: pip install 'tracegrad[web]'"
    assert main(["serve", "--workers", "0"]) == 2
    assert "--workers must be positive" in capsys.readouterr().err


def test_serve_on_a_port_in_use_is_a_one_line_error(capsys):
    from rewrite.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tracegrad: error: cannot listen on 127.0.0.1:{port}: ") and "--port" in err
    assert "\n" not in err


# -- the real server under load -------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(*options: str):
    """``tracegrad serve`` in a subprocess on a free loopback port: yields (base URL, process)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rewrite.cli", "serve", "--port", str(port), *options],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url + "/api/limits", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                said = proc.stderr.read() if proc.poll() is not None else ""
                raise AssertionError(f"the server did not start: {said}")
            time.sleep(0.2)
        yield url, proc
    finally:
        stop_server(proc)


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in task.read_text().split()]
    return out


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MB."""
    total = 0.0
    for p in descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
    return total


def hostile_requests() -> list[tuple[str, dict]]:
    entries = json.loads((DATA / "hostile.json").read_text(encoding="utf-8"))
    generated = {"nested_parens": lambda n: "(" * n + "X" + ")" * n,
                 "long_sum": lambda n: " + ".join(["tr(X)"] * n),
                 "megabyte": lambda n: "tr(X) + " * (n // 8) + "tr(X)",
                 "nested_tr": lambda n: "tr(" + "*".join(["X"] * n) + ")"}
    out = []
    for e in entries:
        expr = generated[e["generate"]](e["n"]) if e.get("generate") else e["expr"]
        out.append(("gradient", {"expr": expr, "wrt": e["wrt"], "shapes": e["shapes"]}))
    return out


VALID = [("gradient", ex) for ex in (
    {"expr": "tr(X'*A*X)", "wrt": "X", "shapes": {"X": ["n", "k"], "A": ["n", "n"]}},
    {"expr": "norm2sq(X*w - y)", "wrt": "w", "shapes": {"X": ["m", "n"], "w": ["n"], "y": ["m"]}, "steps": True},
    {"expr": "logdet(Sigma)", "wrt": "Sigma", "shapes": {"Sigma": ["n", "n"]}},
    {"expr": "-sum(Y .* log(softmax(W*X)))", "wrt": "W",
     "shapes": {"W": ["k", "n"], "X": ["n", "m"], "Y": ["k", "m"]}},
    {"expr": "sum(relu(W*x + b))", "wrt": "W", "shapes": {"W": ["k", "n"], "x": ["n"], "b": ["k"]}, "code": True},
)] + [("hessian", {"expr": "x'*A*x", "wrt": "x", "shapes": {"x": ["n"], "A": ["n", "n"]}}),
      ("hvp", {"expr": "logdet(S)", "wrt": "S", "shapes": {"S": ["n", "n"]}}),
      ("simplify", {"expr": "X*A + X*A'", "shapes": {"X": ["m", "n"], "A": ["n", "n"]}}),
      ("equivalent", {"expr": "tr(A*B*C)", "other": "tr(C*A*B)"}),
      ("variables", {"expr": "x'*A*x"})]


def essence(status: int, body: dict) -> tuple:
    """What must agree between the server and the in-process API: the answer's text fields, or
    the error's kind and position (a body over the size limit is a 413 ``limit`` error, as the
    in-process API's error for an input over the character limit is)."""
    if "error" in body:
        return ("error", body["error"]["kind"], body["error"].get("position") if status != 413 else None)
    keys = ("gradient", "differential", "result", "simplified", "equivalent", "variables", "steps", "code")
    return ("ok",) + tuple(json.dumps(body.get(k), sort_keys=True) for k in keys)


def test_load_real_server():
    hostile = hostile_requests()
    requests = [VALID[i // 3 % len(VALID)] if i % 3 == 0 else hostile[(i * 7) % len(hostile)] for i in range(200)]
    expected = {}
    for op, payload in requests:
        key = (op, json.dumps(payload, sort_keys=True))
        if key not in expected:
            status, body = answer(op, payload, Settings())
            expected[key] = essence(status, body)
    with running_server() as (url, proc), httpx.Client(timeout=60) as http:
        def one(item):
            op, payload = item
            start = time.perf_counter()
            r = http.post(f"{url}/api/{op}", json=payload)
            return op, payload, r.status_code, r.json(), time.perf_counter() - start

        results, rss = [], []
        for half in (requests[:100], requests[100:]):
            with ThreadPoolExecutor(8) as ex:
                results += list(ex.map(one, half))
            rss.append(rss_mb(proc.pid))
        assert proc.poll() is None, "the server died"
        assert http.get(url + "/api/limits").status_code == 200
        assert http.post(url + "/api/gradient", json={"expr": "tr(A*X)", "wrt": "X"}).json()["gradient"] == "A'"
    statuses = [s for _, _, s, _, _ in results]
    assert len(results) == 200 and all(s in (200, 400, 413) for s in statuses), sorted(set(statuses))
    for op, payload, status, body, _ in results:
        assert essence(status, body) == expected[(op, json.dumps(payload, sort_keys=True))], (op, payload, body)
    lat = sorted(t for *_, t in results)
    numbers = {"requests": len(results), "ok": statuses.count(200),
               "errors_4xx": len(results) - statuses.count(200),
               "p50_ms": round(1000 * statistics.median(lat), 1),
               "p95_ms": round(1000 * lat[int(0.95 * len(lat))], 1),
               "rss_mb_after_100": round(rss[0], 1), "rss_mb_after_200": round(rss[1], 1)}
    (artifacts() / "load.json").write_text(json.dumps(numbers, indent=1) + "\n", encoding="utf-8")
    print("load test:", numbers)
    assert rss[1] < 1536 and rss[1] - rss[0] < 200, numbers


def test_a_long_gradient_comes_with_named_temporaries(client):
    expr, shapes = "x", {"x": ["n"]}
    for i in range(1, 9):
        expr, shapes[f"W{i}"] = f"tanh(W{i}*{expr})", ["n", "n"]
    status, body = post(client, "gradient", {"expr": f"sum({expr})", "wrt": "W1", "shapes": shapes})
    assert status == 200 and "\nwhere T0 = " in body["where"]["text"]
    assert len(body["where"]["text"]) < 0.8 * len(body["gradient"])
    sh = {k: tuple(v) for k, v in shapes.items()}
    assert rw.Engine().term(body["where"]["text"], sh) == rw.Engine().term(body["gradient"], sh)
    status, body = post(client, "gradient", {"expr": "tr(A*X)", "wrt": "X", "shapes": {"A": [2, 3], "X": [3, 2]}})
    assert status == 200 and "where" not in body
