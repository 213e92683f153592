"""The HTML report in a real headless browser (Debian's chromium, driven by Playwright):
no console or page errors, nothing fetched but the file itself, every chart drawn, a failing
conformance cell opens its evidence, and a phone-sized viewport never scrolls sideways.

Needs `/usr/bin/chromium` (`apt-get install chromium`) and the `playwright` package; no
browser download: Playwright launches the system chromium through `executable_path`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parity.report.html import write_html
from tests.report.test_html import demo_data, hostile, store_eval_data

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    pytest.skip(
        "browser test: /usr/bin/chromium is missing (apt-get install -y chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="browser test: pip install playwright (the dev extra)"
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def history() -> list[dict[str, Any]]:
    return [
        {
            "run_id": f"run-{i}",
            "created_at": 1.8e9 + i * 86400,
            "providers": [
                {"name": "reference", "accuracy": 0.44, "ttft_p50": 250.0 + i, "tok_s_p50": 55.0},
                {
                    "name": "wrong-template",
                    "accuracy": 0.4 - 0.1 * i,
                    "ttft_p50": 170.0,
                    "tok_s_p50": 65.0,
                },
            ],
        }
        for i in range(3)
    ]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("html")
    out = {
        "demo": tmp / "demo.html",
        "hostile": tmp / "hostile.html",
        "eval": tmp / "eval.html",
    }
    write_html(out["demo"], demo_data(), history())
    write_html(out["hostile"], hostile(demo_data()))
    write_html(out["eval"], store_eval_data(tmp / "eval.db"))
    return out


class Opened:
    """A page opened on a report file, with every console error, page error and request."""

    def __init__(self, browser: Any, path: Path, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.url = path.resolve().as_uri()
        self.page.goto(self.url, wait_until="load")

    def close(self) -> None:
        self.context.close()

    def check_clean(self) -> None:
        assert self.errors == []
        assert [u for u in self.requests if not u.startswith(self.url)] == []


@pytest.fixture
def opened(browser: Any) -> Iterator[Any]:
    tabs: list[Opened] = []

    def open_(path: Path, viewport: dict[str, int] = LAPTOP) -> Opened:
        tab = Opened(browser, path, viewport)
        tabs.append(tab)
        return tab

    yield open_
    for tab in tabs:
        tab.close()


DRAWN = """svg => {
  const box = svg.getBoundingClientRect();
  const shapes = svg.querySelectorAll('circle, rect, line, path, polyline');
  let visible = 0;
  for (const s of shapes) {
    const b = s.getBoundingClientRect();
    if (b.width > 0 || b.height > 0) visible += 1;
  }
  return {name: svg.dataset.chart, width: box.width, height: box.height,
          shapes: shapes.length, visible: visible,
          title: !!svg.querySelector(':scope > title'),
          desc: !!svg.querySelector(':scope > desc')};
}"""


@pytest.mark.parametrize("name", ["demo", "hostile", "eval"])
@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_page_is_clean_and_every_chart_draws(
    opened: Any, pages: dict[str, Path], name: str, viewport: dict[str, int]
) -> None:
    tab = opened(pages[name], viewport)
    charts = [c.evaluate(DRAWN) for c in tab.page.query_selector_all("svg[data-chart]")]
    expected = {"demo": 11, "hostile": 8, "eval": 4}[name]
    assert len(charts) == expected, [c["name"] for c in charts]
    for chart in charts:
        assert chart["width"] > 0 and chart["height"] > 0, chart
        assert chart["shapes"] > 0 and chart["visible"] > 0, chart
        assert chart["title"] and chart["desc"], chart
    # the hostile name is text, not markup: no script element, no dialog
    assert tab.page.locator("script").count() == 0
    tab.check_clean()


def test_failing_cell_reveals_its_evidence(opened: Any, pages: dict[str, Path]) -> None:
    tab = opened(pages["demo"])
    page = tab.page
    cells = page.locator("#conformance td.c-fail a.open")
    assert cells.count() == 10
    for index in (0, 7):  # a failure every provider shares, and one of wrong-template's
        cell = cells.nth(index)
        target = cell.get_attribute("href")
        assert target and target.startswith("#ev-")
        evidence = page.locator(target)
        assert evidence.is_hidden()
        cell.click()
        evidence.wait_for(state="visible", timeout=5000)
        assert evidence.is_visible()
        assert evidence.locator("pre.req").first.is_visible()  # the request, pretty JSON
        text = evidence.inner_text()
        assert "found" in text and "bar" in text and "request" in text.lower()
        box = evidence.bounding_box()
        assert box is not None and box["height"] > 50
        # the others stay hidden
        assert page.locator(".evidence:visible").count() == 1
    # close hides it again
    page.locator(".evidence:visible a.close").click()
    assert page.locator(".evidence:visible").count() == 0
    tab.check_clean()


def test_phone_viewport_never_scrolls_sideways(opened: Any, pages: dict[str, Path]) -> None:
    for name in ("demo", "hostile", "eval"):
        tab = opened(pages[name], PHONE)
        page = tab.page
        width = page.evaluate("document.documentElement.clientWidth")
        assert width == PHONE["width"]
        overflow = page.evaluate(
            "[document.documentElement.scrollWidth, document.body.scrollWidth]"
        )
        assert max(overflow) <= width, (name, overflow)
        # wide tables scroll inside their own box instead
        wraps = page.locator(".table-wrap")
        assert wraps.count() >= 2
        scrolls = page.evaluate(
            "[...document.querySelectorAll('.table-wrap')].map(e => getComputedStyle(e).overflowX)"
        )
        assert set(scrolls) == {"auto"}
        # the charts fit the screen
        widths = page.evaluate(
            "[...document.querySelectorAll('svg[data-chart]')]"
            ".map(s => s.getBoundingClientRect().right)"
        )
        assert widths and max(widths) <= width
        if name == "demo":  # the evidence panel fits too, once opened
            page.locator("#conformance td.c-fail a.open").nth(7).click()
            assert page.evaluate("document.documentElement.scrollWidth") <= width
        tab.check_clean()
