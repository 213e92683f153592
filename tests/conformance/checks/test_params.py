"""The sampling-parameter checks judged on hand-made exchanges: each one's pass, its fault,
and the bar taken from the reference where the reference sets it."""

import json
from typing import Any

from parity.conformance.base import Check, CheckInput, CheckResult, PlanContext, Status
from parity.conformance.checks import params
from parity.core.config import Provider
from parity.core.exchange import ErrorClass, Exchange
from tests.conformance.checks.exchanges import exchange

PROVIDER = Provider(name="p", base_url="http://127.0.0.1:1/v1", model="m")


def x(
    text: str = "ok",
    *,
    completion: int = 2,
    finish: str = "stop",
    raw: str | None = None,
    error: ErrorClass | None = None,
    status: int = 200,
) -> Exchange:
    return exchange(
        status=status,
        error=error,
        text=text,
        finish_reason=finish,
        usage={
            "prompt_tokens": 10,
            "completion_tokens": completion,
            "total_tokens": 10 + completion,
        },
        raw=raw,
    )


def keys(check: Check) -> list[str]:
    return [r.key for r in check.plan(PlanContext(PROVIDER))]


def judge(
    check: Check, exchanges: dict[str, Exchange], reference: dict[str, Exchange] | None = None
) -> CheckResult:
    return check.judge(CheckInput(PROVIDER, exchanges, reference))


def texts(check: Check, said: dict[str, str]) -> dict[str, Exchange]:
    """An answer on every key of `check`: `said[<group>]` for keys in that group, where a
    group is the key's last two parts but the last ('t0', 'hot', '11' ...), suffixed with
    the sample index where the group's value contains '{i}'."""
    out = {}
    for key in keys(check):
        group, i = key.split("/")[-2:]
        out[key] = x(said[group].format(i=i))
    return out


# --- params.max_tokens -------------------------------------------------------------------


def test_max_tokens_passes_at_the_cap_with_finish_length() -> None:
    good = {
        k: x(completion=params.MAX_TOKENS, finish="length") for k in keys(params.MAX_TOKENS_CHECK)
    }
    result = judge(params.MAX_TOKENS_CHECK, good)
    assert result.status is Status.PASS
    assert result.figure == "2/2 stopped at exactly 8 tokens with finish_reason 'length'"


def test_max_tokens_fails_when_ignored_or_mislabelled() -> None:
    first, second = keys(params.MAX_TOKENS_CHECK)
    answers = {
        first: x(completion=200, finish="stop"),  # ran on
        second: x(completion=params.MAX_TOKENS, finish="stop"),  # capped, labelled 'stop'
    }
    result = judge(params.MAX_TOKENS_CHECK, answers)
    assert result.status is Status.FAIL and result.figure.startswith("0/2 stopped")
    assert [e["completion_tokens"] for e in result.evidence] == [200, params.MAX_TOKENS]


# --- params.stop -------------------------------------------------------------------------


def test_stop_passes_before_the_first_e() -> None:
    (key,) = keys(params.STOP_CHECK)
    result = judge(params.STOP_CHECK, {key: x("Th", finish="stop")})
    assert result.status is Status.PASS and result.figure == "text 'Th', finish_reason 'stop'"


def test_stop_fails_when_the_text_runs_past_it() -> None:
    (key,) = keys(params.STOP_CHECK)
    result = judge(params.STOP_CHECK, {key: x("The sea is wide.", finish="stop")})
    assert result.status is Status.FAIL and "The sea is wide." in result.figure
    assert result.evidence[0]["leaked"] == ["e"]


def test_stop_fails_on_the_wrong_finish_reason() -> None:
    (key,) = keys(params.STOP_CHECK)
    result = judge(params.STOP_CHECK, {key: x("Th", finish="length")})
    assert result.status is Status.FAIL and "finish_reason 'length'" in result.figure


# --- params.temperature_zero -------------------------------------------------------------


HOT = "story {i}"  # T=1.5 samples, all different (params.diversity's, shared)


def test_temperature_zero_passes_when_all_repeats_agree() -> None:
    said = {"t0": "A fox ran.", "hot": HOT}
    result = judge(params.TEMPERATURE_ZERO, texts(params.TEMPERATURE_ZERO, said))
    assert result.status is Status.PASS
    assert result.figure.startswith("agreement 1.00 over 6 repeats")
    assert result.bar.startswith("all equal")


def test_temperature_zero_fails_when_repeats_disagree() -> None:
    answers = texts(params.TEMPERATURE_ZERO, {"t0": "A fox ran {i} miles.", "hot": HOT})
    result = judge(params.TEMPERATURE_ZERO, answers)
    assert result.status is Status.FAIL and result.figure.startswith("agreement 0.17 over 6")
    assert len(result.evidence) == 6


def test_temperature_zero_bar_is_the_reference_own_agreement() -> None:
    k = keys(params.TEMPERATURE_ZERO)
    reference = texts(params.TEMPERATURE_ZERO, {"t0": "A fox ran.", "hot": HOT})
    reference[k[0]] = x("A fox hid.")  # the reference agrees on 5 of 6 itself
    mine = texts(params.TEMPERATURE_ZERO, {"t0": "A fox ran.", "hot": HOT})
    mine[k[3]] = x("A fox slept.")
    mine[k[4]] = x("A fox sang.")  # 4 of 6: GPU noise, not significantly below 5 of 6
    result = judge(params.TEMPERATURE_ZERO, mine, reference)
    assert result.status is Status.PASS and result.bar.startswith("not significantly below")
    assert "the reference's 4/5" in result.bar
    ignored = texts(params.TEMPERATURE_ZERO, {"t0": "A fox ran {i} miles.", "hot": HOT})
    result = judge(params.TEMPERATURE_ZERO, ignored, reference)  # sampled at its default
    assert result.status is Status.FAIL and result.figure.startswith("agreement 0.17")


def test_agreement_and_output_include_the_reasoning() -> None:
    assert params.agreement([]) == 0.0
    assert params.agreement(["a", "a", "b", "c"]) == 0.5
    thought = x("391")
    thought.reasoning = "17*23"
    assert params.output(thought) == "17*23\n391"


# --- params.diversity --------------------------------------------------------------------


def narrow(said: str, strays: int = 0) -> dict[str, Exchange]:
    """Diversity answers: 6 distinct at T=1.5, `said` at top_p=0.01 with `strays` others."""
    out = texts(params.DIVERSITY, {"hot": "story {i}", "narrow": said})
    for i in range(strays):
        out[f"conformance/params.samples/narrow/{i}"] = x(f"stray {i}")
    return out


def test_diversity_plan_samples_hot_and_narrow() -> None:
    k = keys(params.DIVERSITY)
    assert len(k) == len(set(k)) == 2 * params.DIVERSE
    assert k[0] == "conformance/params.samples/hot/0" and k[-1].endswith("/narrow/5")
    bodies = [r.body for r in params.DIVERSITY.plan(PlanContext(PROVIDER))]
    assert {(b["temperature"], b["top_p"]) for b in bodies} == {(1.5, 1.0), (1.5, 0.01)}


def test_diversity_passes_when_temperature_and_top_p_are_honoured() -> None:
    result = judge(params.DIVERSITY, narrow("same"))
    assert result.status is Status.PASS
    assert result.figure == "6/6 distinct at T=1.5; 1.00 agreement at T=1.5 top_p=0.01"


def test_diversity_allows_one_stray_sample_at_top_p() -> None:
    result = judge(params.DIVERSITY, narrow("same", strays=1))
    assert result.status is Status.PASS and "0.83 agreement" in result.figure
    # Two strays of six: GPU noise still agrees far more often than top_p=1 samples do.
    result = judge(params.DIVERSITY, narrow("same", strays=2))
    assert result.status is Status.PASS and "0.67 agreement" in result.figure
    result = judge(params.DIVERSITY, narrow("same", strays=4))
    assert result.status is Status.FAIL and "0.33 agreement" in result.figure


def test_diversity_fails_when_top_p_is_ignored() -> None:
    result = judge(params.DIVERSITY, narrow("tale {i}"))
    assert result.status is Status.FAIL and "0.17 agreement at T=1.5 top_p=0.01" in result.figure
    assert result.evidence == [{"distinct_hot": 6, "agreement_narrow": 1 / 6}]


def test_diversity_fails_when_temperature_is_ignored() -> None:
    same = texts(params.DIVERSITY, {"hot": "same", "narrow": "same"})
    result = judge(params.DIVERSITY, same)
    assert result.status is Status.FAIL and result.figure.startswith("1/6 distinct at T=1.5")


def test_diversity_bar_lowered_to_the_reference_own_agreement() -> None:
    reference = narrow("same", strays=2)  # the reference itself agrees 4/6 at top_p=0.01
    result = judge(params.DIVERSITY, narrow("same", strays=3), reference)
    assert result.status is Status.PASS and "than the reference's 3/5" in result.bar
    result = judge(params.DIVERSITY, narrow("tale {i}"), reference)  # top_p ignored
    assert result.status is Status.FAIL and "0.17 agreement" in result.figure


# --- params.seed -------------------------------------------------------------------------

SEED_KEYS = keys(params.SEED)
SEEDS = list(dict.fromkeys(k.split("/")[-2] for k in SEED_KEYS))  # '11', '12', ...


def seeded(*unseeded: str) -> dict[str, Exchange]:
    """Same-seed pairs that agree, except on the seeds in `unseeded` (each try differs)."""
    said = {seed: "fox {i}" if seed in unseeded else f"fox {seed}" for seed in SEEDS}
    return texts(params.SEED, said)


def test_seed_plan_sends_each_seed_twice() -> None:
    assert len(SEEDS) >= 2 and len(SEED_KEYS) == len(set(SEED_KEYS)) == 2 * len(SEEDS)
    bodies = [r.body for r in params.SEED.plan(PlanContext(PROVIDER))]
    assert [b["seed"] for b in bodies] == [int(s) for s in SEEDS for _ in range(2)]


def test_seed_passes_when_same_seed_gives_same_answer() -> None:
    result = judge(params.SEED, seeded())
    assert result.status is Status.PASS
    assert result.figure == f"{len(SEEDS)}/{len(SEEDS)} same-seed pairs equal"


def test_seed_fails_when_the_seed_is_dropped() -> None:
    result = judge(params.SEED, seeded(*SEEDS))
    assert result.status is Status.FAIL
    assert result.figure.startswith(f"0/{len(SEEDS)} same-seed pairs equal")
    assert len(result.evidence) == len(SEED_KEYS)
    # One pair in six off is batch noise: still far above pairs of different seeds (0/6).
    result = judge(params.SEED, seeded(SEEDS[0]))
    assert result.status is Status.PASS
    assert result.figure.startswith(f"{len(SEEDS) - 1}/{len(SEEDS)} same-seed pairs equal")


def test_seed_not_applicable_only_when_the_reference_never_reproduces() -> None:
    mine = seeded(*SEEDS)
    result = judge(params.SEED, mine, seeded(*SEEDS))
    assert result.status is Status.NOT_APPLICABLE
    assert result.figure.startswith("the reference does not reproduce a seed (0/")
    # A reference short of "all equal" still sets the bar: its own rate.
    result = judge(params.SEED, mine, seeded(SEEDS[0]))
    assert result.status is Status.FAIL and result.figure.startswith("0/")
    result = judge(params.SEED, seeded(SEEDS[1]), seeded(SEEDS[0]))
    assert result.status is Status.PASS


# --- params.n ----------------------------------------------------------------------------


def body(choices: int) -> str:
    return json.dumps(
        {"choices": [{"index": i, "message": {"content": f"fox {i}"}} for i in range(choices)]}
    )


def test_choices_count_parses_the_raw_body() -> None:
    assert params.choices_count(x(raw=body(2))) == 2
    assert params.choices_count(x(raw=body(0))) == 0
    assert params.choices_count(x(raw=None)) is None
    assert params.choices_count(x(raw="not json")) is None
    assert params.choices_count(x(raw=json.dumps({"choices": "two"}))) is None
    assert params.choices_count(x(raw=json.dumps([1, 2]))) is None


def test_n_passes_with_two_choices() -> None:
    (key,) = keys(params.N_CHECK)
    result = judge(params.N_CHECK, {key: x(raw=body(2))})
    assert result.status is Status.PASS and result.figure == "2 choices for n=2"


def test_n_fails_with_one_choice() -> None:
    (key,) = keys(params.N_CHECK)
    result = judge(params.N_CHECK, {key: x(raw=body(1))}, {key: x(raw=body(2))})
    assert result.status is Status.FAIL and result.figure == "1 choices for n=2"
    assert result.evidence[0]["choices"] == 1
    assert params.N_CHECK.required is False


def test_n_not_applicable_when_the_reference_returns_one_choice_too() -> None:
    (key,) = keys(params.N_CHECK)
    result = judge(params.N_CHECK, {key: x(raw=body(1))}, {key: x(raw=body(1))})
    assert result.status is Status.NOT_APPLICABLE and "reference does not honour n" in result.figure


# --- params.logprobs ---------------------------------------------------------------------

GOOD_TOP = [-0.2, -2.5, -3.0]  # probabilities 0.82 + 0.08 + 0.05 <= 1


def token(logprob: float = -0.2, top: list[float] | None = GOOD_TOP) -> dict[str, Any]:
    entry: dict[str, Any] = {"token": "A", "logprob": logprob}
    if top is not None:
        entry["top_logprobs"] = [{"token": f"t{i}", "logprob": v} for i, v in enumerate(top)]
    return entry


def lp(*tokens: dict[str, Any]) -> Exchange:
    return x(raw=json.dumps({"choices": [{"logprobs": {"content": list(tokens)}}]}))


def test_logprob_problems_none_on_well_formed_data() -> None:
    assert params.logprob_problems(lp(token(), token(-2.5), token(0.0, [0.0, -40.0, -41.0]))) == []


def test_logprob_problems_finds_a_positive_logprob() -> None:
    assert params.logprob_problems(lp(token(), token(0.5))) == ["token 1: logprob 0.5 is not <= 0"]


def test_logprob_problems_finds_the_wrong_top_count() -> None:
    problems = params.logprob_problems(lp(token(top=[-0.2, -2.5]), token(top=None)))
    assert problems == [
        "token 0: 2 top_logprobs, asked 3",
        "token 1: no top_logprobs, asked 3",
    ]


def test_logprob_problems_finds_unsorted_top_logprobs() -> None:
    problems = params.logprob_problems(lp(token(top=[-2.5, -0.2, -3.0])))
    assert problems == ["token 0: top_logprobs not sorted"]


def test_logprob_problems_finds_unnormalised_probabilities() -> None:
    # exp(-0.1) + exp(-1) + exp(-2) = 1.41: raw scores, not log-probabilities.
    problems = params.logprob_problems(lp(token(-0.1, [-0.1, -1.0, -2.0])))
    assert problems == ["token 0: top_logprobs sum to more than probability 1"]


def test_logprob_problems_finds_missing_logprobs() -> None:
    missing = "no choices[0].logprobs.content"
    assert params.logprob_problems(x(raw=json.dumps({"choices": [{"message": {}}]}))) == [missing]
    assert params.logprob_problems(x(raw=json.dumps({"choices": [{"logprobs": None}]}))) == [
        missing
    ]
    assert params.logprob_problems(x(raw=None)) == [missing]
    assert params.logprob_problems(lp()) == ["logprobs.content is empty"]
    no_numbers = lp({"logprob": -0.1, "top_logprobs": [{"token": "a"}] * 3})
    assert params.logprob_problems(no_numbers) == ["token 0: top_logprobs without numbers"]


def test_logprobs_judge_passes_and_fails_with_the_first_problem() -> None:
    (key,) = keys(params.LOGPROBS)
    result = judge(params.LOGPROBS, {key: lp(token(), token())})
    assert result.status is Status.PASS and result.figure == "well formed"
    result = judge(params.LOGPROBS, {key: lp(token(0.5), token(top=[-3.0, -0.2, -2.5]))})
    assert result.status is Status.FAIL and result.figure == "token 0: logprob 0.5 is not <= 0"
    assert result.evidence[0]["problems"][1] == "token 1: top_logprobs not sorted"


def test_logprobs_far_above_zero_are_a_problem_not_a_crash() -> None:
    problems = params.logprob_problems(lp(token(-0.1, [800.0, -1.0, -2.0])))
    assert any("more than probability 1" in p for p in problems)


def test_temperature_zero_ignores_a_reference_that_never_answered() -> None:
    (check,) = [params.TEMPERATURE_ZERO]
    mine = {k: x(f"answer {i}") for i, k in enumerate(keys(check))}
    dead = {k: x(status=500, error=ErrorClass.HTTP_5XX) for k in keys(check)}
    result = judge(check, mine, dead)
    assert result.status is Status.FAIL and result.bar.startswith("all equal")


def test_n_refused_with_a_400_is_a_failure() -> None:
    (k,) = keys(params.N_CHECK)
    result = judge(params.N_CHECK, {k: x(status=400, error=ErrorClass.HTTP_4XX)})
    assert result.status is Status.FAIL and "refused with HTTP 400" in result.figure
