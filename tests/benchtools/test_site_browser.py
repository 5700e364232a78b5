"""The published site in a real browser: headless Chromium, offline, on a fixture history.

A fixture history (tests/benchtools/site_fixture.py: a few commits, asv result files of
three benchmarks with a regression) is published with the real ``asv publish`` and made
self-contained by benchtools/site.py, served on 127.0.0.1 by the server ``make preview``
uses, and opened in Debian's ``chromium`` driven by Playwright (never its own browser
download). Every request the pages make is recorded, and any that is not for the local
server is aborted and fails the test; so does any console error or uncaught exception.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import site_fixture as sf
from playwright.sync_api import Browser, Page, Request, Route, sync_playwright

from benchtools import site as bench_site

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROJECT = "https://github.com/pganalytics/demo"


@dataclass
class Recorder:
    """What one page did: every request URL, console errors, uncaught exceptions."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


PLANTED = "pganalytics_core/breaker.py:CircuitBreaker.reset"


def confirm_the_step(html: Path) -> str:
    """A confirmation report keeping asv's one step, as ``make bench`` writes it (with a
    call diff naming :data:`PLANTED`); returns the step's commit."""
    entry = json.loads((html / "regressions.json").read_text())["regressions"][0]
    revisions = json.loads((html / "index.json").read_text())["revision_to_hash"]
    after = revisions[str(entry[6][0][1])]
    cost = {"calls": 1.0, "bytecodes": 21.0, "own_ns": 700.0}
    step = {
        "name": entry[0],
        "before": "0" * 40,
        "after": after,
        "unit": "seconds",
        "asv_ratio": 2.02,
        "origin": "asv",
        "threshold": 0.2,
        "kept": True,
        "reason": "confirmed: 2.01x [1.98..2.05] in 8 paired rounds",
        "remeasured": {
            "name": entry[0],
            "verdict": "regression",
            "unit": "seconds",
            "base": {"center": 1e-6, "low": 1e-6, "high": 1e-6},
            "head": {"center": 2e-6, "low": 2e-6, "high": 2e-6},
            "ratio": {"center": 2.01, "low": 1.98, "high": 2.05},
            "rounds": 8,
            "note": "",
        },
        "asv_named": [after],
        "parent": "0" * 40,
        "calls": {
            "operation": "breaker_reset",
            "error": "",
            "changes": [
                {
                    "function": PLANTED,
                    "kind": "changed",
                    "before": cost,
                    "after": {**cost, "bytecodes": 40.0},
                }
            ],
        },
    }
    report = {"listed": 1, "kept": 1, "steps": [step]}
    (html / "regressions-confirmation.json").write_text(json.dumps(report))
    return str(after)


def publish(root: Path, origin: str | None, *, confirmed: bool = False) -> Path:
    """The fixture history published into html/, linked to ``origin`` when given (and
    its step confirmed, as by ``make bench``, when ``confirmed``)."""
    history = sf.make_history(root / "repo")
    sf.write_results(history.repo / ".asv" / "results", history)
    if origin:
        sf.git(history.repo, "remote", "add", "origin", origin)
    links = bench_site.site_links(history.repo, env={})
    conf = bench_site.publish_config(
        history.repo / "asv.conf.json", history.repo / ".asv" / "publish.json", links
    )
    sf.asv_publish(history.repo, conf)
    if confirmed:
        confirm_the_step(history.repo / "html")
    bench_site.finish(history.repo / "html", links)
    return history.repo / "html"


@contextlib.contextmanager
def serving(html: Path) -> Iterator[str]:
    """``html`` served by make preview's server on a free port of 127.0.0.1."""
    server = bench_site.make_server(html, port=0)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The site of a repository whose origin is on GitHub."""
    html = publish(tmp_path_factory.mktemp("site"), f"git@github.com:{PROJECT[19:]}.git")
    with serving(html) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            "no chromium: install it with `apt-get install -y chromium` (.ci/run does)",
            pytrace=False,
        )
    # Playwright starts Chromium with a fresh --user-data-dir of its own (a temporary
    # profile, removed on close); each page gets a fresh context (no shared cache).
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser: Browser, base_url: str, path: str) -> tuple[Page, Recorder]:
    """``base_url + path`` in a fresh context, recording requests and errors."""
    rec = Recorder()
    context = browser.new_context(viewport={"width": 1280, "height": 800})

    def on_request(request: Request) -> None:
        rec.requests.append(request.url)

    def route(r: Route) -> None:
        if r.request.url.startswith(base_url):
            r.continue_()
        else:
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("request", on_request)
    page.on("console", lambda m: rec.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: rec.errors.append(f"uncaught: {exc}"))
    page.goto(base_url + path, wait_until="load")
    return page, rec


def assert_clean(page: Page, rec: Recorder, base_url: str) -> None:
    assert "error.html" not in page.url, "asv's page: its JavaScript dependencies failed to load"
    outside = [u for u in rec.requests if not u.startswith(base_url)]
    assert outside == [], f"requests leaving the site: {outside}"
    assert rec.errors == [], f"console errors: {rec.errors}"
    assert any(u.endswith("/vendor/jquery/jquery.min.js") for u in rec.requests)


def test_grid_lists_every_benchmark(browser: Browser, base_url: str) -> None:
    page, rec = open_page(browser, base_url, "index.html")
    page.wait_for_selector("#summarygrid-display .benchmark-container", timeout=15_000)
    text = page.inner_text("#summarygrid-display")
    for name in ("time_call", "time_sort", "track_p99_ms", "track_instructions"):
        assert name in text
    assert page.get_attribute("#project-name", "href") == PROJECT
    assert page.inner_text("#project-name") == "demo"
    assert_clean(page, rec, base_url)
    page.context.close()


def test_graph_page_draws_the_history(browser: Browser, base_url: str) -> None:
    page, rec = open_page(browser, base_url, "index.html#bench_demo.Breaker.time_call")
    page.wait_for_selector("#main-graph canvas.flot-base", timeout=15_000)
    page.wait_for_function(
        "document.querySelector('#main-graph canvas.flot-base').width > 0", timeout=15_000
    )
    # Pixels of a drawn series: anything neither transparent nor white/grey axis ink.
    coloured = page.evaluate(
        """() => {
            const c = document.querySelector('#main-graph canvas.flot-base');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4) {
                const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
                if (a > 0 && (Math.max(r, g, b) - Math.min(r, g, b)) > 40) n++;
            }
            return n;
        }"""
    )
    assert coloured > 100, f"only {coloured} coloured pixels: no series drawn"
    assert "bench_demo.Breaker.time_call" in page.inner_text("#title")
    assert_clean(page, rec, base_url)
    page.context.close()


def test_regressions_page_lists_the_regression_with_commit_links(
    browser: Browser, base_url: str
) -> None:
    page, rec = open_page(browser, base_url, "index.html#regressions")
    page.wait_for_selector("#regressions-body table tbody tr", timeout=15_000)
    rows = page.query_selector_all("#regressions-body table tbody tr")
    assert len(rows) == 1
    text = rows[0].inner_text()
    assert "bench_demo.Breaker.time_call" in text
    assert "2.02" in text or "2.0" in text  # the factor of the step
    hrefs = [a.get_attribute("href") or "" for a in rows[0].query_selector_all("a")]
    # The step is at one commit (a link to it) or between two (a GitHub compare link).
    assert any(h.startswith((f"{PROJECT}/commit/", f"{PROJECT}/compare/")) for h in hrefs), hrefs
    assert_clean(page, rec, base_url)
    page.context.close()


def test_without_a_web_remote_commit_and_project_links_are_text(
    browser: Browser, tmp_path: Path
) -> None:
    html = publish(tmp_path, origin=None)
    with serving(html) as base_url:
        page, rec = open_page(browser, base_url, "index.html#regressions")
        page.wait_for_selector("#regressions-body table tbody tr", timeout=15_000)
        row = page.query_selector("#regressions-body table tbody tr")
        assert row is not None
        commit_cell = row.query_selector_all("td")[2]
        assert re.fullmatch(r"[0-9a-f]{8}", commit_cell.inner_text().strip())
        assert commit_cell.query_selector_all("a[href]") == []
        # The benchmark link (within the site) stays.
        assert row.query_selector("a[href^='#bench_demo.Breaker.time_call']") is not None
        assert page.get_attribute("#project-name", "href") is None
        assert page.inner_text("#project-name") == "demo"
        assert_clean(page, rec, base_url)
        page.context.close()


def test_the_site_opens_from_disk(browser: Browser, tmp_path: Path) -> None:
    """file://: browsers refuse asv's XMLHttpRequests there; the .json.js twins serve."""
    html = publish(tmp_path, origin=None)
    base_url = html.as_uri() + "/"

    page, rec = open_page(browser, base_url, "index.html#regressions")
    page.wait_for_selector("#regressions-body table tbody tr", timeout=15_000)
    assert "bench_demo.Breaker.time_call" in page.inner_text("#regressions-body")
    assert_clean(page, rec, base_url)
    assert any(u.endswith("/regressions.json.js") for u in rec.requests)
    page.context.close()

    page, rec = open_page(browser, base_url, "index.html#bench_demo.Sort.time_sort")
    page.wait_for_selector("#main-graph canvas.flot-base", timeout=15_000)
    assert "bench_demo.Sort.time_sort" in page.inner_text("#title")
    assert_clean(page, rec, base_url)
    page.context.close()


def test_a_published_step_shows_its_evidence_from_disk(browser: Browser, tmp_path: Path) -> None:
    html = publish(tmp_path, origin=None, confirmed=True)
    base_url = html.as_uri() + "/"

    page, rec = open_page(browser, base_url, "index.html#regressions")
    page.wait_for_selector("#regressions-body .pga-why a", timeout=15_000)
    why = page.inner_text("#regressions-body .pga-why")
    assert why.startswith("confirmed: 2.01x [1.98..2.05] in 8 paired rounds")
    href = page.get_attribute("#regressions-body .pga-why a", "href") or ""
    assert href.startswith("evidence/")
    assert href.endswith(".html")
    assert_clean(page, rec, base_url)
    # One load of the list serves the row reasons and the graph marks.
    assert sum(u.endswith("/evidence/steps.json.js") for u in rec.requests) == 1
    page.click("#regressions-body .pga-why a")
    page.wait_for_selector("#calls", timeout=15_000)
    assert page.url.startswith(base_url + "evidence/")
    assert PLANTED in page.inner_text("#calls table tbody tr:first-child")
    assert "21 → 40" in page.inner_text("#calls")
    assert "paired wall-clock rounds: 8" in page.inner_text("#measurement")
    outside = [u for u in rec.requests if not u.startswith(base_url)]
    assert outside == []
    assert rec.errors == []
    page.context.close()


def _y_labels(page: Page) -> list[str]:
    page.wait_for_selector("#main-graph canvas.flot-base", timeout=15_000)
    page.wait_for_function(
        "document.querySelectorAll('#main-graph .flot-y-axis .flot-tick-label').length > 0",
        timeout=15_000,
    )
    return [
        e.inner_text() for e in page.query_selector_all("#main-graph .flot-y-axis .flot-tick-label")
    ]


def test_a_flat_graph_has_one_label_at_its_value(browser: Browser, base_url: str) -> None:
    page, rec = open_page(browser, base_url, "index.html#bench_demo.Count.track_calls")
    assert _y_labels(page) == ["3.50e+4"]  # asv's own formatting, once
    assert_clean(page, rec, base_url)
    page.context.close()

    page, rec = open_page(browser, base_url, "index.html#bench_demo.Load.track_p99_ms")
    labels = _y_labels(page)
    assert len(labels) > 2  # a graph that moves keeps asv's ticks
    assert len(set(labels)) == len(labels), labels
    assert_clean(page, rec, base_url)
    page.context.close()


def test_the_graph_marks_its_published_step(browser: Browser, tmp_path: Path) -> None:
    html = publish(tmp_path, origin=None, confirmed=True)
    step = json.loads((html / "evidence" / "steps.json").read_text())["steps"][0]
    revision = {
        h: int(r)
        for r, h in json.loads((html / "index.json").read_text())["revision_to_hash"].items()
    }[step["commit"]]
    with serving(html) as url:
        page, rec = open_page(browser, url, "index.html#bench_demo.Breaker.time_call")
        page.wait_for_selector("#main-graph canvas.flot-base", timeout=15_000)
        marks = page.evaluate(
            "() => $('#main-graph').data('plot').getOptions().grid.markings"
            ".filter(m => m.pgaStep).map(m => [m.pgaStep, m.xaxis.from])"
        )
        assert marks == [[step["commit"], revision]]
        assert_clean(page, rec, url)
        page.context.close()
        # Another benchmark's graph has no mark.
        page, rec = open_page(browser, url, "index.html#bench_demo.Load.track_p99_ms")
        page.wait_for_selector("#main-graph canvas.flot-base", timeout=15_000)
        marks = page.evaluate(
            "() => ($('#main-graph').data('plot').getOptions().grid.markings || [])"
            ".filter(m => m.pgaStep).length"
        )
        assert marks == 0
        page.context.close()
