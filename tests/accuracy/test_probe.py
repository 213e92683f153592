from parity.accuracy import probe as accuracy
from parity.accuracy.suites import get_suite
from parity.core.exchange import ErrorClass, Exchange, Timings

SUITE = get_suite("easy")


def reply(text: str, error: ErrorClass | None = None) -> Exchange:
    return Exchange(request={}, stream=False, timings=Timings(sent=0), text=text, error=error)


def test_plan_asks_every_problem_repeats_times_with_a_seed_per_sample() -> None:
    planned = accuracy.plan(SUITE, repeats=3)
    assert len(planned) == 3 * len(SUITE.problems)
    assert len({r.key for r in planned}) == len(planned)
    first = [r for r in planned if r.key.startswith(f"accuracy/easy/{SUITE.problems[0].id}/")]
    assert len({r.body["seed"] for r in first}) == 3
    assert all(r.body["temperature"] == 0.7 and r.body["max_tokens"] == 16 for r in planned)
    assert accuracy.plan(SUITE, 3) == planned  # deterministic: resume plans the same requests


def test_scores_skip_failed_requests() -> None:
    p = SUITE.problems[0]
    exchanges = {
        f"accuracy/easy/{p.id}/0": reply(f"It is {p.answer}"),
        f"accuracy/easy/{p.id}/1": reply("no idea"),
        f"accuracy/easy/{p.id}/2": reply("", ErrorClass.TIMEOUT),
        "speed/0": reply(p.answer),
    }
    found = accuracy.scores(SUITE, exchanges)
    assert found[p.id] == [1.0, 0.0]
    assert found[SUITE.problems[1].id] == []


def test_analyse_gives_a_verdict_against_the_reference() -> None:
    ref = {f"q{i}": [1.0, 1.0] for i in range(30)}
    bad = {f"q{i}": [0.0, 0.0] if i < 20 else [1.0, 1.0] for i in range(30)}
    result = accuracy.analyse(bad, ref, errors=0, margin=0.03)
    assert result["vs_reference"]["verdict"] == "degraded"
    assert result["accuracy"]["value"] == 10 / 30
    assert accuracy.analyse({"q": []}, ref, 5, 0.03) == {"errors": 5, "accuracy": None}
