"""analyse_run is a pure function of the store: results from stored exchanges alone."""

from pathlib import Path

from parity.accuracy.suites import get_suite
from parity.core.analysis import analyse_run
from parity.core.config import Provider
from parity.core.exchange import Exchange, Timings
from parity.core.plan import RunOptions, plan_requests
from parity.core.store import Store

SUITE = get_suite("easy")


def answer(body: dict, right: bool) -> Exchange:  # type: ignore[type-arg]
    problem = next(p for p in SUITE.problems if p.prompt == body["messages"][-1]["content"])
    text = problem.answer if right else "I do not know"
    return Exchange(
        request=body,
        stream=False,
        timings=Timings(sent=0, end=1),
        status=200,
        text=text,
        finish_reason="stop",
        usage={"prompt_tokens": 30, "completion_tokens": 4, "total_tokens": 34},
    )


def test_analysis_recomputes_verdicts_and_cost_from_the_store(tmp_path: Path) -> None:
    options = RunOptions(repeats=2, speed_requests=0, conformance=False)
    ref = Provider(
        name="ref",
        base_url="http://127.0.0.1:1/v1",
        model="m",
        reference=True,
        price_input=1.0,
        price_output=2.0,
    )
    bad = Provider(name="bad", base_url="http://127.0.0.1:2/v1", model="m")
    with Store(tmp_path / "p.db") as store:
        run_id = store.create_run("run", None, options.model_dump(), "test")
        for provider, right_share in ((ref, 1.0), (bad, 0.25)):
            store.add_provider(run_id, provider.name, provider.public_dict())
            store.set_reachability(run_id, provider.name, True, "ok")
            for i, req in enumerate(plan_requests(run_id, provider, options)):
                right = (i // 2) < right_share * len(SUITE.problems)
                store.add_exchange(
                    run_id, provider.name, req.probe, req.key, answer(req.body, right)
                )
        results = {r.name: r for r in analyse_run(store, run_id, options)}
        stored = store.results(run_id)
    assert results["ref"].verdict == "reference"
    assert results["ref"].accuracy["accuracy"]["value"] == 1.0  # type: ignore[index]
    assert results["bad"].verdict == "degraded"
    assert results["bad"].accuracy["accuracy"]["value"] == 0.25  # type: ignore[index]
    requests = 2 * len(SUITE.problems)
    assert results["ref"].cost_usd == (requests * 30 * 1.0 + requests * 4 * 2.0) / 1e6
    assert results["bad"].cost_usd is None  # no prices in the file
    assert {name for name, *_ in stored} == {"ref", "bad"}


# --- conformance: an outage is an error, never a failure ---------------------------------


def _ok(body: dict) -> Exchange:  # type: ignore[type-arg]
    return Exchange(
        request=body,
        stream=False,
        timings=Timings(sent=0, end=1),
        status=200,
        text="Red, yellow and blue.",
        finish_reason="stop",
        usage={"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    )


def _gateway(body: dict, status: int = 502) -> Exchange:  # type: ignore[type-arg]
    from parity.core.exchange import ErrorClass

    return Exchange(
        request=body,
        stream=False,
        timings=Timings(sent=0),
        status=status,
        error=ErrorClass.HTTP_5XX,
        error_detail=f"HTTP {status}: <html>Bad Gateway</html>",
        attempts=2,
    )


def _conform_run(tmp_path: Path, answers: dict[str, object]) -> dict[str, object]:
    """A conform run of every check: `answers[name]` is "ok" (every request answered),
    "502" (every request a gateway error), ("unavailable", n) (n requests stored, all 502,
    then the provider marked unavailable) or "unreachable" (nothing stored)."""
    from parity.conformance.run import conform_options

    options = conform_options(None, 1)
    providers = [
        Provider(name=name, base_url=f"http://127.0.0.1:{i + 1}/v1", model="m",
                 context_window=2048, reference=i == 0)
        for i, name in enumerate(answers)
    ]  # fmt: skip
    with Store(tmp_path / "c.db") as store:
        run_id = store.create_run("conform", None, options.model_dump(), "test")
        for provider in providers:
            how = answers[provider.name]
            store.add_provider(run_id, provider.name, provider.public_dict())
            requests = plan_requests(run_id, provider, options)
            if how == "unreachable":
                store.set_reachability(run_id, provider.name, False, "cannot connect: refused")
                continue
            store.set_reachability(run_id, provider.name, True, "ok")
            stored = requests[: how[1]] if isinstance(how, tuple) else requests
            for req in stored:
                x = _ok(req.body) if how == "ok" else _gateway(req.body)
                store.add_exchange(run_id, provider.name, req.probe, req.key, x)
            if isinstance(how, tuple):
                store.set_reachability(
                    run_id, provider.name, False, "unavailable: 3 consecutive transport failures"
                )
        return {r.name: r for r in analyse_run(store, run_id, options)}


def test_an_outage_makes_every_check_an_error_not_a_failure(tmp_path: Path) -> None:
    from parity.conformance.registry import CHECKS

    results = _conform_run(
        tmp_path,
        {"ref": "ok", "gateway": "502", "gone": ("unavailable", 3), "down": "unreachable"},
    )
    for name in ("gateway", "gone", "down"):
        rows = results[name].conformance  # type: ignore[attr-defined]
        assert len(rows) == len(CHECKS), name
        statuses = {r["id"]: r["status"] for r in rows}
        assert "fail" not in statuses.values(), (name, statuses)
        errors = [r for r in rows if r["status"] == "error"]
        assert len(errors) == len(CHECKS), (name, statuses)
        assert all(r["figure"].startswith("unavailable: ") for r in errors), name
    gone = {r["id"]: r for r in results["gone"].conformance}  # type: ignore[attr-defined]
    assert "unavailable: 3 consecutive transport failures" in gone["errors.malformed"]["figure"]
    assert "not sent" in gone["errors.malformed"]["figure"]
    down = {r["id"]: r for r in results["down"].conformance}  # type: ignore[attr-defined]
    assert down["usage.reported"]["figure"].startswith("unavailable: cannot connect: refused")


def test_a_reference_without_an_answer_sets_no_bar(tmp_path: Path) -> None:
    results = _conform_run(tmp_path, {"ref": "502", "twin": "ok"})
    twin = {r["id"]: r for r in results["twin"].conformance}  # type: ignore[attr-defined]
    assert twin["usage.prompt_tokens"]["status"] == "n/a"
    assert "the reference has no usable answer" in twin["usage.prompt_tokens"]["figure"]
    ref = {r["id"]: r for r in results["ref"].conformance}  # type: ignore[attr-defined]
    assert ref["usage.reported"]["status"] == "error"
