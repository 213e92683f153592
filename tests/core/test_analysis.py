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
