"""The HTML report without a browser: it renders run and eval data (from real stores and from
a saved copy of the demo's report model), escapes everything it is given, loads nothing from
the network, leaves out sections whose data is missing, and is well-formed."""

from __future__ import annotations

import copy
import json
import random
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from parity.accuracy.evaluate import EvalOptions, fixed_requests, load_suite
from parity.accuracy.suites import get_suite
from parity.core.config import Provider
from parity.core.exchange import Exchange, Timings
from parity.core.plan import RunOptions, plan_requests
from parity.core.store import Store
from parity.report import svg
from parity.report.data import report_data
from parity.report.html import render_html, write_html

HERE = Path(__file__).parent
DEMO = HERE / "demo_report.json"
HOSTILE = "<script>alert(1)</script>"
SUITE = get_suite("easy")
ANSWERS = {p.prompt: p.answer for p in SUITE.problems}

RUN_SECTIONS = ("verdicts", "leaderboard", "price", "speed", "accuracy", "conformance", "cost")
RUN_CHARTS = (
    "speed-price",
    "accuracy-price",
    "ttft",
    "output-speed",
    "accuracy",
    "vs-reference",
    "cost",
    "tokens",
)


# ---------------------------------------------------------------------------------------
# Report models to render (also used by test_html_browser.py).


def demo_data() -> dict[str, Any]:
    """The report model of a `parity demo` run on the local fleet (long strings cut)."""
    data: dict[str, Any] = json.loads(DEMO.read_text(encoding="utf-8"))
    return data


def _provider(name: str, reference: bool = False, price: float | None = 1.0) -> Provider:
    return Provider(
        name=name,
        base_url="http://127.0.0.1:9/v1",
        model="m",
        reference=reference,
        price_input=price,
        price_output=None if price is None else price * 3,
    )


def _answer(body: dict[str, Any], right: bool) -> Exchange:
    question = body["messages"][-1]["content"]
    text = f"The answer is {ANSWERS[question]}." if right else "I do not know."
    return Exchange(
        request=body,
        stream=False,
        timings=Timings(sent=0, end=1),
        status=200,
        text=text,
        finish_reason="stop",
        usage={"prompt_tokens": 30, "completion_tokens": 6, "total_tokens": 36},
    )


def _streamed(body: dict[str, Any], ttft_ms: float, tokens_per_s: float) -> Exchange:
    first = int(ttft_ms * 1e6)
    gap = int(1e9 / tokens_per_s)
    chunks = [first + i * gap for i in range(32)]
    return Exchange(
        request=body,
        stream=True,
        timings=Timings(
            sent=0,
            first_chunk=first,
            first_token_chunk=first,
            token_chunks=chunks,
            first_answer_chunk=first,
            end=chunks[-1] + 1000,
        ),
        status=200,
        text="word " * 32,
        finish_reason="length",
    )


def store_run_data(path: Path) -> dict[str, Any]:
    """A real store with a run (speed and accuracy, no conformance): a reference, a faithful
    twin, a degraded provider without prices, and an unreachable one."""
    options = RunOptions(repeats=2, speed_requests=6, conformance=False)
    skills = {"ref": 0.9, "twin": 0.9, "lossy": 0.3}
    with Store(path) as store:
        run_id = store.create_run("run", "providers.toml", options.model_dump(), "test")
        providers = [
            _provider("ref", reference=True),
            _provider("twin", price=0.5),
            _provider("lossy", price=None),
            _provider("gone"),
        ]
        for n, provider in enumerate(providers):
            store.add_provider(run_id, provider.name, provider.public_dict())
            if provider.name == "gone":
                store.set_reachability(run_id, provider.name, False, "connection refused")
                continue
            store.set_reachability(run_id, provider.name, True, "1 model(s)")
            rng = random.Random(n)
            for req in plan_requests(run_id, provider, options):
                if req.key.startswith("speed/"):
                    x = _streamed(
                        req.body, 150 + 40 * n + rng.random() * 30, 50 + rng.random() * 20
                    )
                else:
                    right = random.Random(req.key).random() < skills[provider.name]
                    x = _answer(req.body, right if provider.name != "lossy" else rng.random() < 0.3)
                store.add_exchange(run_id, provider.name, req.probe, req.key, x)
        store.finish_run(run_id)
        return report_data(store, run_id)


def store_eval_data(path: Path, repeats: int = 4) -> dict[str, Any]:
    """A real store with a fixed-design eval: whole-suite scores by repeat and pass@k."""
    options = EvalOptions(repeats=repeats, adaptive=False)
    suite = load_suite(options)
    skills = {"ref": 0.85, "twin": 0.85, "lossy": 0.35}
    with Store(path) as store:
        run_id = store.create_run("eval", "providers.toml", options.model_dump(), "test")
        for name, skill in skills.items():
            provider = _provider(name, reference=name == "ref")
            store.add_provider(run_id, name, provider.public_dict())
            store.set_reachability(run_id, name, True, "1 model(s)")
            rng = random.Random(name)
            for req in fixed_requests(suite, repeats):
                right = rng.random() < skill
                store.add_exchange(run_id, name, req.probe, req.key, _answer(req.body, right))
        store.finish_run(run_id)
        return report_data(store, run_id)


def hostile(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with its first non-reference provider renamed to a script, and hostile model
    output and URLs in its evidence."""
    data = copy.deepcopy(data)
    victim = next(p for p in data["providers"] if not p.get("reference"))
    old = victim["name"]
    victim["name"] = HOSTILE
    for line in data["summary"]:
        if line["name"] == old:
            line["name"] = HOSTILE
            line["why"] = '"><img src=x onerror=alert(2)>'
    for check in victim.get("conformance", []):
        check["status"] = "fail"
        check["figure"] = '" onmouseover="alert(3)'
        check["evidence"] = [
            {
                "key": "k</code><script>alert(4)</script>",
                "request": {"messages": [{"role": "user", "content": "</pre><script>x</script>"}]},
                "text": '<img src="https://evil.example/x.png"> <a href="http://evil.example">',
                "status": 200,
            }
        ]
    return data


# ---------------------------------------------------------------------------------------
# An HTML reader for the assertions.


VOID = {"meta", "br", "img", "input", "link", "hr", "wbr", "col", "source"}


class Page(HTMLParser):
    """Collects charts, ids, attributes and checks that elements nest properly."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []  # (tag, name, value)
        self.charts: dict[str, dict[str, int]] = {}
        self._chart: str | None = None
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {self.stack}")

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> dict[str, str]:
        out = {k: v or "" for k, v in attrs}
        for k, v in out.items():
            self.attrs.append((tag, k, v))
        if "id" in out:
            self.ids.append(out["id"])
        return out

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = self._attrs(tag, attrs)
        if tag == "svg" and "data-chart" in a:
            self._chart = a["data-chart"]
            self.charts[self._chart] = {}
        elif self._chart is not None:
            counts = self.charts[self._chart]
            counts[tag] = counts.get(tag, 0) + 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, attrs)
        if self._chart is not None:
            counts = self.charts[self._chart]
            counts[tag] = counts.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "svg":
            self._chart = None


def shapes(counts: dict[str, int]) -> int:
    return sum(counts.get(t, 0) for t in ("circle", "rect", "line", "path", "polyline"))


def check_page(text: str) -> Page:
    page = Page(text)
    assert page.errors == []
    assert len(page.ids) == len(set(page.ids)), "duplicate ids"
    for name, counts in page.charts.items():
        assert counts.get("title") and counts.get("desc"), name
        assert shapes(counts) > 0, f"{name} drew nothing"
    return page


def sections(text: str) -> set[str]:
    return set(re.findall(r'<section id="([^"]+)"', text))


# ---------------------------------------------------------------------------------------


def test_demo_report_has_every_section_and_chart() -> None:
    text = render_html(demo_data())
    page = check_page(text)
    assert sections(text) == set(RUN_SECTIONS)
    assert set(page.charts) == set(RUN_CHARTS)
    assert text.startswith("<!doctype html>")
    assert 'name="viewport"' in text
    for name in ("reference", "compressed-mild", "wrong-template", "short-context"):
        assert f">{name}<" in text
    # the verdict line comes first, with every status coloured by class
    assert text.index('id="verdicts"') < text.index('id="leaderboard"')
    for status in ("no-difference-found", "degraded", "suspicious", "reference"):
        assert f'class="verdict v-{status}"' in text
    assert "every figure recomputed from the store" in text
    assert "20261128-010833-0654d0" in text


def test_every_failing_conformance_cell_opens_its_evidence() -> None:
    data = demo_data()
    text = render_html(data)
    page = check_page(text)
    failing = sum(
        c["status"] in ("fail", "error") for p in data["providers"] for c in p["conformance"]
    )
    links = [v for tag, k, v in page.attrs if tag == "a" and k == "href" and v.startswith("#ev-")]
    assert len(links) == failing == 10
    for link in links:
        assert link[1:] in page.ids
    # the evidence shows the request, the response, the figure and the bar
    panel = text[text.index('id="ev-1"') :]
    panel = panel[: panel.index('<div class="evidence"', 10)]
    assert "stream_options" in panel and "no usage chunk in the stream" in panel
    assert "found" in panel and "bar" in panel and "request" in panel


def test_hostile_strings_are_escaped() -> None:
    text = render_html(hostile(demo_data()))
    page = check_page(text)
    assert HOSTILE not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;/pre&gt;&lt;script&gt;x&lt;/script&gt;" in text  # model output, as text
    tags = {tag for tag, _, _ in page.attrs}
    assert not tags & {"script", "img", "iframe", "object", "embed"}
    assert "<script" not in text.lower()
    handlers = [(tag, name) for tag, name, _ in page.attrs if name.startswith("on")]
    assert handlers == []
    # the hostile name is still shown, as text, in the verdicts, the table and the charts
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 8


def test_nothing_is_loaded_from_the_network() -> None:
    for data in (demo_data(), hostile(demo_data())):
        text = render_html(data)
        page = check_page(text)
        for tag, name, value in page.attrs:
            assert name != "src", (tag, value)
            if name == "href":
                assert value.startswith("#"), (tag, value)
            if name == "xmlns":
                assert value == "http://www.w3.org/2000/svg"
        stripped = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert not re.search(r"(src|href|action)\s*=\s*[\"']?\s*(https?:)?//", stripped)
        assert "@import" not in text and "url(" not in text
        assert "default-src 'none'" in text  # the CSP forbids loads and scripts anyway


def test_run_from_a_real_store_leaves_out_conformance(tmp_path: Path) -> None:
    data = store_run_data(tmp_path / "p.db")
    text = render_html(data)
    page = check_page(text)
    assert "conformance" not in sections(text)
    assert {"verdicts", "leaderboard", "speed", "accuracy", "cost"} <= sections(text)
    assert {"ttft", "output-speed", "accuracy", "vs-reference", "tokens"} <= set(page.charts)
    # only priced providers are on the price charts: lossy has no prices
    price = text[text.index('data-chart="speed-price"') :]
    price = price[: price.index("</svg>")]
    assert ">twin<" in price and ">lossy<" not in price
    assert 'class="verdict v-unreachable"' in text
    assert "connection refused" in text


def test_fixed_eval_from_a_real_store(tmp_path: Path) -> None:
    data = store_eval_data(tmp_path / "p.db")
    assert data["run"]["kind"] == "eval"
    text = render_html(data)
    page = check_page(text)
    # an eval's entries carry no prices: no price chart
    assert sections(text) == {"verdicts", "leaderboard", "accuracy", "cost"}
    assert {"suite-scores", "accuracy", "vs-reference", "eval-tokens"} <= set(page.charts)
    assert "speed-price" not in page.charts  # an eval measures no speed
    assert "pass@1" in text and "pass@4" in text
    assert "fixed design" in text
    # one dot per repeat per provider in the whole-suite box plot
    assert page.charts["suite-scores"]["circle"] == 3 * 4
    lines = {line["name"]: line["status"] for line in data["summary"]}
    assert lines == {"ref": "reference", "twin": "no difference found", "lossy": "degraded"}


def test_adaptive_eval_shape_renders() -> None:
    """The shape `parity eval` stores for an adaptive run (from /tmp/eval.db), by hand."""
    provider = {
        "name": "b",
        "reference": False,
        "suite": "easy",
        "problems": 80,
        "design": "adaptive",
        "samples": 40,
        "errors": 0,
        "tokens": 2307,
        "cost_usd": 0.0001,
        "fixed_design_samples": 320,
        "fixed_design_tokens": 18456,
        "stop_reason": "decided",
        "accuracy": {"value": 0.08, "low": 0.0, "high": 0.2, "n_problems": 30, "n_samples": 40},
        "vs_reference": {
            "diff": -0.325,
            "low": -0.57,
            "high": -0.1,
            "p_value": None,
            "n_pairs": 40,
            "verdict": "degraded",
            "margin": 0.03,
        },
        "verdict": "degraded",
    }
    ref = {
        **provider,
        "name": "a",
        "reference": True,
        "vs_reference": None,
        "verdict": "reference",
        "stop_reason": None,
        "accuracy": {"value": 0.44, "low": 0.34, "high": 0.53},
    }
    gone = {"name": "c", "reference": False, "unreachable": True, "verdict": "unreachable"}
    data = {
        "parity_version": "0.1.0",
        "run": {"id": "r1", "kind": "eval", "created_at": 1.8e9, "options": {"adaptive": True}},
        "providers": [ref, provider, gone],
        "summary": [
            {"name": "a", "status": "reference", "why": "-"},
            {"name": "b", "status": "degraded", "why": "accuracy -32.5 points"},
            {"name": "c", "status": "unreachable", "why": "no answer"},
        ],
    }
    text = render_html(data)
    page = check_page(text)
    assert "suite-scores" not in page.charts
    assert "40 pairs" in text and "88%" in text  # 1 - 2307/18456 tokens saved
    assert "adaptive design" in text


def test_sections_are_left_out_without_data() -> None:
    data = {
        "parity_version": "0.1.0",
        "run": {"id": "empty", "kind": "run"},
        "providers": [],
        "summary": [],
    }
    text = render_html(data)
    check_page(text)
    assert sections(text) == set()
    assert "<svg" not in text
    assert "empty" in text and "every figure recomputed from the store" in text

    bare = copy.deepcopy(demo_data())
    for p in bare["providers"]:
        p.update(speed=None, speed_samples={}, conformance=[], blended_price=None)
    text = render_html(bare)
    page = check_page(text)
    assert sections(text) == {"verdicts", "leaderboard", "accuracy", "cost"}
    assert set(page.charts) == {"accuracy", "vs-reference", "cost", "tokens"}


def test_history_chart_needs_two_runs() -> None:
    def run(i: int) -> dict[str, Any]:
        return {
            "run_id": f"run-{i}",
            "created_at": 1.8e9 + i * 86400,
            "providers": [
                {
                    "name": "ref",
                    "accuracy": 0.44,
                    "accuracy_low": 0.34,
                    "accuracy_high": 0.53,
                    "ttft_p50": 250 + i,
                    "tok_s_p50": 55.0,
                    "verdict": "reference",
                },
                {
                    "name": HOSTILE,
                    "accuracy": 0.3 - i * 0.05,
                    "ttft_p50": None,
                    "tok_s_p50": 60 - i,
                    "verdict": "degraded",
                },
            ],
        }

    data = demo_data()
    assert "history" not in sections(render_html(data, [run(0)]))
    text = render_html(data, [run(2), run(0), run(1)])
    page = check_page(text)
    assert "history" in sections(text)
    assert {"history-accuracy", "history-ttft", "history-speed"} <= set(page.charts)
    assert HOSTILE not in text
    # oldest first: three points per line
    assert page.charts["history-accuracy"]["path"] == 2


def test_write_html(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "report.html"
    write_html(out, demo_data())
    assert out.read_text(encoding="utf-8") == render_html(demo_data())


def test_svg_helpers() -> None:
    lo, hi, step, ticks = svg.nice_ticks(0.0, 0.37, 4)
    assert (lo, hi, step) == (0.0, 0.4, 0.1) and ticks == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert svg.nice_ticks(5.0, 5.0)[3]  # a flat range still gets ticks
    assert svg.quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    axis = svg.Axis("x", suffix=" pts", factor=100, signed=True)
    assert axis.fmt(-0.2, 0.1) == "−20 pts" and axis.fmt(0.1, 0.1) == "+10 pts"
    assert axis.fmt(0.0, 0.1) == "0 pts"
    chart = svg.bars("b", "t", "d", [svg.BarRow("<x>", [svg.Segment(1.0, "#000")])], svg.Axis("a"))
    assert "&lt;x&gt;" in chart and "<x>" not in chart


@pytest.mark.parametrize("value", [float("nan"), None, "n/a"])
def test_odd_numbers_do_not_break_the_page(value: Any) -> None:
    data = copy.deepcopy(demo_data())
    p = data["providers"][1]
    p["blended_price"] = value
    p["cost_usd"] = value
    p["speed_samples"]["ttft_ms"] = [value, 200.0]
    p["speed"]["ttft_ms"]["p50"] = value
    p["accuracy"]["accuracy"]["value"] = value
    p["accuracy"]["vs_reference"]["diff"] = value
    text = render_html(data)
    page = check_page(text)
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)
    assert "accuracy" in page.charts  # the others are still drawn


def test_cost_by_pillar_when_the_model_has_it() -> None:
    data = copy.deepcopy(demo_data())
    for p in data["providers"]:
        p["cost_by_pillar"] = {
            k: {"requests": n, "prompt_tokens": n * 10, "completion_tokens": n, "cost_usd": n / 1e5}
            for k, n in (("speed", 6), ("accuracy", 160), ("conformance", 12))
        }
    text = render_html(data)
    page = check_page(text)
    assert "6 · 160 · 12" in text and "speed · accuracy · conformance" in text
    assert "accuracy $" in text and "$0.00160" in text  # 160 / 1e5
    # three stacked segments per provider
    assert page.charts["cost"]["rect"] >= 3 * len(data["providers"])
