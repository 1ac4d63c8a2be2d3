"""The playground page in a real browser (Playwright driving Debian's Chromium, headless): a matrix
gradient, a Hessian and a parse error typed into the page, each checked in the rendered page —
the answer's text, KaTeX's output, the derivation, the e-graph frame, the generated code, the
report, the error's underline — plus the permalink and the Examples menu, and no request leaving
the machine. Screenshots go to ``TRACEGRAD_ARTIFACTS`` (default tests/artifacts/);
``TRACEGRAD_UPDATE_SCREENSHOT=1`` also refreshes docs/images/playground.png."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import stop_server

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("starlette", reason="the web extra is not installed (pip install 'tracegrad[web]')")
pytest.importorskip("uvicorn", reason="the web extra is not installed (pip install 'tracegrad[web]')")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip install playwright)")
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
if CHROMIUM is None:
    pytest.skip("no Chromium to drive (apt-get install chromium)", allow_module_level=True)


def artifacts() -> Path:
    out = Path(os.environ.get("TRACEGRAD_ARTIFACTS") or Path(__file__).parent / "artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server():
    """``tracegrad serve`` in a subprocess on a free loopback port: yields its base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rewrite.cli", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/api/limits", timeout=2).status_code == 200:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def page():
    with running_server() as url, sync_api.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        except Exception as e:  # a Chromium Playwright cannot drive
            pytest.skip(f"Chromium could not be launched by Playwright: {e}")
        pg = browser.new_context(viewport={"width": 1200, "height": 1000}).new_page()
        pg.set_default_timeout(30_000)
        pg.base = url
        pg.outside, pg.problems = [], []
        pg.on("request", lambda r: r.url.startswith((url, "data:", "about:", "blob:")) or pg.outside.append(r.url))
        pg.on("pageerror", lambda e: pg.problems.append(str(e)))
        pg.goto(url + "/#expr=")  # an empty input: nothing computed on load
        pg.locator("#examples option").nth(1).wait_for(state="attached")
        yield pg
        browser.close()


def type_expression(page, expr: str, names: list[str]) -> None:
    """Replace the expression and wait until the variable table lists ``names``."""
    page.fill("#expr", "")
    page.type("#expr", expr)
    rows = page.locator("#vars tbody tr")
    sync_api.expect(rows).to_have_count(len(names))
    for name in names:
        page.locator(f'#vars tbody tr[data-name="{name}"]').wait_for()


def set_variable(page, name: str, kind: str, rows: str = "", cols: str = "") -> None:
    row = page.locator(f'#vars tbody tr[data-name="{name}"]')
    row.locator("select.kind").select_option(kind)
    if rows:
        row.locator("input.rows").fill(rows)
    if cols:
        row.locator("input.cols").fill(cols)


def compute_and_wait(page, answer: str) -> None:
    page.click("#go")
    sync_api.expect(page.locator("#answer-text")).to_have_text(answer)
    sync_api.expect(page.locator("#busy")).to_be_hidden()


def test_matrix_gradient(page):
    page.select_option("#op", "gradient")
    type_expression(page, "tr(X'*A*X)", ["A", "X"])
    set_variable(page, "X", "matrix", "n", "k")
    set_variable(page, "A", "matrix", "n", "n")
    page.select_option("#wrt", "X")
    compute_and_wait(page, "(A + A')*X")
    assert page.locator("#math .katex").count() >= 1
    assert "∂" in page.locator("#math .katex").first.inner_text() or page.locator("#math .mfrac").count()
    steps = page.locator("#steps li")
    assert steps.count() >= 4
    assert steps.first.inner_text().startswith("f") and "(A + A')*X" in steps.last.inner_text()
    # the same derivation as mathematics: an align* block typeset by KaTeX, without errors
    page.click("#steps-math-box summary")
    assert page.locator("#steps-math .katex").count() == 1
    assert page.locator("#steps-math .katex-error").count() == 0
    math = page.locator("#steps-math").inner_text()
    assert "canonical" in math and "s-factor-r" in math
    # the e-graph frame: the viz page lays the graph out with Graphviz (WebAssembly) inside it
    frame = page.frame_locator("#egraph")
    frame.locator("svg g.cluster").first.wait_for()
    assert "e-classes" in page.locator("#egraph-note").inner_text()
    page.wait_for_timeout(300)  # let the frame paint
    if os.environ.get("TRACEGRAD_UPDATE_SCREENSHOT") == "1":
        (ROOT / "docs" / "images").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ROOT / "docs" / "images" / "playground.png"))
    assert "def f_and_grad(" in page.locator("#code").inner_text()
    page.click('#backends button[data-backend="torch"]')
    assert "import torch" in page.locator("#code").inner_text()
    report = page.locator("#report").inner_text()
    assert "goal" in report and "e-nodes" in report
    assert page.locator("#error").is_hidden()
    assert "expr=tr" in page.url and "v.X=matrix" in page.url  # the permalink
    page.screenshot(path=str(artifacts() / "web-gradient.png"), full_page=True)


def test_permalink_restores_the_input(page):
    link = page.url
    assert "expr=" in link
    other = page.context.new_page()
    other.goto(link)
    sync_api.expect(other.locator("#answer-text")).to_have_text("(A + A')*X")
    assert other.input_value("#expr") == "tr(X'*A*X)"
    assert other.locator('#vars tr[data-name="X"] input.cols').input_value() == "k"
    other.close()


def test_hessian(page):
    page.select_option("#op", "hessian")
    type_expression(page, "x'*A*x", ["A", "x"])
    set_variable(page, "x", "vector", "n")
    set_variable(page, "A", "matrix", "n", "n")
    page.select_option("#wrt", "x")
    compute_and_wait(page, "A + A'")
    assert page.locator("#math .katex").count() >= 1
    assert "def " in page.locator("#code").inner_text()
    page.locator("#steps li").nth(2).wait_for()
    page.screenshot(path=str(artifacts() / "web-hessian.png"), full_page=True)


def test_parse_error_is_underlined(page):
    page.select_option("#op", "gradient")
    page.fill("#expr", "")
    page.type("#expr", "tr(X'*A*X")
    mark = page.locator("#expr-mirror .error-underline")
    mark.wait_for()
    assert page.locator("#error-kind").inner_text() == "parse error"
    assert "missing ')'" in page.locator("#error-message").inner_text()
    assert page.locator("#error-where").inner_text() == "at 1:10"
    assert page.locator("#expr-mirror").inner_text().startswith("tr(X'*A*X")
    assert page.get_attribute("#expr", "aria-invalid") == "true"
    assert page.locator("#result").is_hidden()
    page.screenshot(path=str(artifacts() / "web-parse-error.png"), full_page=True)


def test_examples_menu(page):
    options = page.locator("#examples option")
    labels = [options.nth(i).inner_text() for i in range(options.count())]
    index = next(i for i, t in enumerate(labels) if t.startswith("least squares"))
    page.select_option("#examples", str(index - 1))
    sync_api.expect(page.locator("#answer-text")).to_have_text("2*X'*(X*w - y)")
    assert page.input_value("#expr") == "norm2sq(X*w - y)"


def test_nothing_left_the_machine(page):
    assert page.outside == []
    assert page.problems == []
