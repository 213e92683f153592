"""The report model, typed: what `report_data` returns and every report format reads.

`Report` holds the run (`Run`), one entry per provider and one verdict line per provider
(`VerdictLine`). A provider entry's class depends on the run's kind:

- `RunProvider` (`parity run`, `parity demo`, ...): speed (`Speed`, one `Summary` per
  metric), accuracy (`RunAccuracy`: an `Estimate` and a `Comparison` with the reference),
  price and cost, conformance (`ConformanceRow`s with their evidence) and the per-request
  speed samples (`SpeedSamples`);
- `EvalProvider` (`parity eval`): accuracy (`Estimate`) and its difference from the
  reference (`Comparison` in the fixed design, `SequentialComparison` in the adaptive one),
  samples, tokens, cost, pass@k; `UnreachableEvalProvider` for a provider that never answered;
- `BenchProvider` (`parity bench`) and `EquivProvider` (`parity equiv`): the results those
  commands stored, as they stored them.

`Report.to_dict()` is the JSON-ready form the JSON export writes: every model writes the
keys it was given, in the order of its fields (which is the order they have always had in
the JSON), and only those, so a key the producer did not write (`vs_reference` without a
reference, `pass_at_k` in an adaptive eval) is not invented.

`parity history` and `parity diff` are typed as `TypedDict`s (`HistoryRow`, `HistoryRun`,
`DiffResult`, ...): they stay plain dicts because `parity diff --json` writes them with
`json.dumps` and the HTML report checks `isinstance(h, dict)` on the history it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, Literal, NotRequired, TypeAlias, TypedDict, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from parity.stats.estimates import current_verdict

__all__ = [
    "AB",
    "STATUSES",
    "AccuracyDiff",
    "AccuracyFigure",
    "BenchProvider",
    "Comparison",
    "ConformanceCount",
    "ConformanceDiff",
    "ConformanceRow",
    "DiffResult",
    "Difference",
    "EquivProvider",
    "Estimate",
    "EvalEntry",
    "EvalProvider",
    "Flip",
    "HistoryPoint",
    "HistoryRow",
    "HistoryRun",
    "ProviderDiff",
    "ProviderEntry",
    "Report",
    "ReportModel",
    "Run",
    "RunAccuracy",
    "RunMeta",
    "RunProvider",
    "SequentialComparison",
    "Speed",
    "SpeedSamples",
    "SpeedTest",
    "Summary",
    "UnreachableEvalProvider",
    "VerdictLine",
    "current_line",
    "current_status",
    "provider_entry",
]


class ReportModel(BaseModel):
    """The base of every report model: its JSON-ready form, and a transitional mapping shim.

    The shim (`__getitem__`, `get`, `__contains__`) lets code written for the former nested
    dicts read a model unchanged: `model["key"]` is `model.to_dict()["key"]`, the field's
    value in its JSON-ready form (plain dicts and lists, not models), and a key the model
    did not write raises KeyError as the dict did. It is there for the HTML renderer
    (`report/html.py` and its templates), which still reads `data.get("providers")` and
    checks `isinstance(..., dict)` on what it gets; new code uses attributes. Remove it
    (these three methods) once nothing indexes a model with strings.
    """

    model_config = ConfigDict(extra="forbid")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: the keys this model was given, in field order."""
        return self.model_dump(exclude_unset=True)

    # -- transitional mapping shim (see the class docstring) ---------------------------------

    def __getitem__(self, key: str) -> Any:
        found = self.model_dump(include={key}, exclude_unset=True)
        if key not in found:
            raise KeyError(key)
        return found[key]

    def get(self, key: str, default: Any = None) -> Any:
        """`self[key]`, or `default` when this model has no such key."""
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.model_fields_set


# --------------------------------------------------------------------------------------------
# Statistics (the JSON form of `parity.stats.estimates` dataclasses)
# --------------------------------------------------------------------------------------------


class Summary(ReportModel):
    """Descriptive statistics of a sample (`stats.estimates.Summary`); all but `count` are
    None for an empty sample."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    min: float | None
    max: float | None


class Estimate(ReportModel):
    """A solve rate (a fraction) with its bootstrap confidence interval [low, high]."""

    value: float
    low: float
    high: float
    n_problems: int
    n_samples: int
    confidence: float


class Comparison(ReportModel):
    """Provider minus reference solve rate on the problems both answered: the interval
    [low, high] at level `confidence` and the p-value from one paired sign-flip test (the
    p-value Holm-adjusted across the run's providers, the interval at the level Holm tested
    this provider at, so p < alpha exactly when the interval excludes 0) and the verdict
    (equivalent, no difference found, degraded, better) against the equivalence margin.

    An eval's entry adds `n_pairs` (None) and `method`; a run's has neither. `p_unadjusted`,
    `correction` (holm, none), `family` (providers compared) and `alpha` (the family-wise
    error rate) are absent from reports made before the correction; there the interval is
    a nested bootstrap's. An old verdict label is read as today's (`current_verdict`)."""

    diff: float
    low: float
    high: float
    p_value: float
    n_problems: int
    n_samples_provider: int
    n_samples_reference: int
    margin: float
    confidence: float
    verdict: str
    n_pairs: int | None = None
    method: str | None = None
    p_unadjusted: float | None = None
    correction: str | None = None
    family: int | None = None
    alpha: float | None = None

    _verdict = field_validator("verdict", mode="before")(current_verdict)

    @property
    def shared(self) -> int | None:
        """What the difference was measured on: pairs when counted, else shared problems."""
        return self.n_pairs or self.n_problems


class SequentialComparison(ReportModel):
    """An adaptive eval's difference from the reference: an anytime-valid confidence
    sequence [low, high] over `n_pairs` (problem, sample) pairs at level `confidence`
    (Bonferroni: 1 - alpha / family), and the anytime-valid p-value of the same test,
    Bonferroni-adjusted (None in reports made before it was computed)."""

    diff: float
    low: float
    high: float
    p_value: float | None
    n_pairs: int
    verdict: str
    margin: float
    confidence: float
    method: str
    p_unadjusted: float | None = None
    correction: str | None = None
    family: int | None = None
    alpha: float | None = None

    _verdict = field_validator("verdict", mode="before")(current_verdict)

    @property
    def shared(self) -> int | None:
        """What the difference was measured on: the pairs."""
        return self.n_pairs or None


Difference: TypeAlias = Comparison | SequentialComparison
"""A provider's accuracy difference from the reference, either design."""


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


class Run(ReportModel):
    """The run as stored: id, kind (run, eval, bench, equiv, ...), status, unix times, the
    options it was started with, how many exchanges it stored, its providers file."""

    id: str
    kind: str
    status: str
    created_at: float
    finished_at: float | None
    options: dict[str, Any]  # RunOptions or EvalOptions (or bench's), as stored
    exchanges: int
    source: str | None


# --------------------------------------------------------------------------------------------
# A `parity run` provider
# --------------------------------------------------------------------------------------------


class Speed(ReportModel):
    """Speed over the successful speed requests: one `Summary` per metric, in ms or tok/s.
    (Reports stored before TTFAT and ITL were measured have no `ttfat_ms`, `itl_ms`.)"""

    requests: int
    errors: int
    output_tokens_from: list[str]
    ttft_ms: Summary
    ttfat_ms: Summary | None = None
    output_tokens_per_s: Summary
    e2e_ms: Summary
    itl_ms: Summary | None = None

    def summary(self, metric: str) -> Summary | None:
        """The summary of one metric (ttft_ms, ttfat_ms, output_tokens_per_s, e2e_ms, itl_ms)."""
        found = getattr(self, metric, None) if metric in type(self).model_fields else None
        return found if isinstance(found, Summary) else None


class SpeedSamples(ReportModel):
    """Every successful speed request's figure, for the distributions and `parity diff`."""

    ttft_ms: list[float]
    output_tokens_per_s: list[float]
    e2e_ms: list[float] | None = None


class RunAccuracy(ReportModel):
    """A run's accuracy: failed requests, the solve rate (None when nothing was scored), the
    comparison with the reference (absent without one), the suite and its repeats."""

    errors: int
    accuracy: Estimate | None
    vs_reference: Comparison | None = None
    suite: str
    repeats: int


class ConformanceRow(ReportModel):
    """One conformance check: pass, fail, n/a or error, the figure it measured, the bar it
    held the provider to, the requests it cost and the exchanges that back a failure.
    (Older reports have no `required` and `cost`.)"""

    id: str
    family: str
    checks: str
    required: bool = True
    status: str
    figure: str
    bar: str
    cost: int | None = None
    evidence: list[dict[str, Any]]  # `conformance.base.evidence` records: free-form JSON


class RunProvider(ReportModel):
    """Everything a `parity run` found about one provider (`core.analysis.ProviderResult`),
    its derived verdict and conformance counts, and its speed samples."""

    name: str
    reference: bool
    reachable: bool | None
    detail: str | None
    price_input: float | None
    price_output: float | None
    blended_price: float | None
    requests: int
    errors: dict[str, int]
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    speed: Speed | None
    accuracy: RunAccuracy | None
    conformance: list[ConformanceRow]
    verdict: str
    conformance_passed: int
    conformance_judged: int
    speed_samples: SpeedSamples

    _verdict = field_validator("verdict", mode="before")(current_verdict)


# --------------------------------------------------------------------------------------------
# A `parity eval` provider
# --------------------------------------------------------------------------------------------


class EvalProvider(ReportModel):
    """A `parity eval` provider (`accuracy.evaluate.analyse_eval`): design, spend against the
    fixed design, accuracy and its difference from the reference; a fixed design adds the
    whole-suite score of each repeat and pass@k / pass^k, keyed by k."""

    name: str
    reference: bool
    suite: str
    problems: int
    design: str
    samples: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    tokens: int
    cost_usd: float | None
    fixed_design_samples: int
    fixed_design_tokens: int | None
    stop_reason: str | None
    accuracy: Estimate | None
    vs_reference: Comparison | SequentialComparison | None
    problems_sampled: int | None = None
    suite_scores_by_repeat: list[float] | None = None
    pass_at_k: dict[str, float] | None = None
    pass_hat_k: dict[str, float] | None = None
    verdict: str

    _verdict = field_validator("verdict", mode="before")(current_verdict)


class UnreachableEvalProvider(ReportModel):
    """A `parity eval` provider that did not answer GET /models: nothing was measured."""

    name: str
    reference: bool
    unreachable: Literal[True]
    verdict: str


EvalEntry: TypeAlias = EvalProvider | UnreachableEvalProvider


# --------------------------------------------------------------------------------------------
# `parity bench` and `parity equiv` providers
# --------------------------------------------------------------------------------------------


class BenchProvider(ReportModel):
    """A `parity bench` provider: `speed` is its first step's stored aggregates
    (`bench.metrics.aggregate` with the step's workload and load), `bench` every result the
    bench stored for it, keyed `pillar/name`; their shape is the bench's own."""

    name: str
    reference: bool
    price_input: float | None
    price_output: float | None
    reachable: bool | None
    detail: str | None
    verdict: str
    speed: dict[str, Any] | None
    bench: dict[str, Any]

    def summary(self, metric: str) -> Summary | None:
        """The first step's summary of one metric (ttft_ms, output_tokens_per_s, ...)."""
        found = (self.speed or {}).get(metric)
        return Summary.model_validate(found) if isinstance(found, Mapping) else None


class EquivProvider(ReportModel):
    """A `parity equiv` provider: `equivalence` is its stored decision (verdict same,
    different or inconclusive, with each method's test), as `parity equiv` wrote it."""

    name: str
    reference: bool
    price_input: float | None
    price_output: float | None
    reachable: bool | None
    detail: str | None
    verdict: str
    equivalence: dict[str, Any] | None


ProviderEntry: TypeAlias = (
    RunProvider | EvalProvider | UnreachableEvalProvider | BenchProvider | EquivProvider
)
"""One provider's entry in a report; which class depends on the run's kind."""


def provider_entry(kind: str, entry: ProviderEntry | Mapping[str, Any]) -> ProviderEntry:
    """`entry` (a model, or its dict form) as the entry class of a run of `kind`."""
    if not isinstance(entry, Mapping):
        return entry
    if kind == "eval":
        if entry.get("unreachable"):
            return UnreachableEvalProvider.model_validate(entry)
        return EvalProvider.model_validate(entry)
    if kind == "bench":
        return BenchProvider.model_validate(entry)
    if kind in ("equiv", "equiv-record"):
        return EquivProvider.model_validate(entry)
    return RunProvider.model_validate(entry)


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


STATUSES = (
    "equivalent",
    "no difference found",
    "better",
    "degraded",
    "suspicious",
    "reference",
    "unreachable",
)
"""The statuses of a verdict line (a `parity bench` run's lines say "bench")."""


def current_status(status: str, verdict: str | None) -> str:
    """A verdict line's status as this version names it. Reports made before the labels
    changed said "faithful" for every provider not degraded and with no conformance failure
    of its own; it is read as what its accuracy verdict showed: "equivalent" (or the
    distribution test's "same"), "better", else "no difference found"."""
    if status != "faithful":
        return status
    verdict = current_verdict(verdict or "")
    if verdict in ("equivalent", "equiv:same"):
        return "equivalent"
    if verdict == "better":
        return "better"
    return "no difference found"


class VerdictLine(ReportModel):
    """A provider's verdict line: its status (`STATUSES`: equivalent, no difference found,
    better, degraded, suspicious, reference, unreachable; or bench) and why in words."""

    name: str
    status: str
    why: str


class Report(ReportModel):
    """Everything a report shows about one run: the parity version that drew it, the run,
    one entry per provider (in the run's order) and one verdict line per provider."""

    parity_version: str
    run: Run
    providers: list[ProviderEntry]
    summary: list[VerdictLine]

    @model_validator(mode="before")
    @classmethod
    def _entries_by_kind(cls, data: Any) -> Any:
        """A report given as a dict (a JSON export read back): each provider entry read as
        the entry class of the run's kind."""
        if not isinstance(data, Mapping):
            return data
        run = data.get("run")
        kind = str(run.get("kind") or "run") if isinstance(run, Mapping) else "run"
        providers = data.get("providers")
        if isinstance(providers, list):
            entries = [provider_entry(kind, p) for p in providers]
            data = {**data, "providers": entries}
            verdicts = {p.name: p.verdict for p in entries}
            summary = data.get("summary")
            if isinstance(summary, list):
                data = {**data, "summary": [current_line(s, verdicts) for s in summary]}
        return data

    @classmethod
    def of(cls, data: Report | Mapping[str, Any]) -> Report:
        """`data` itself, or the report its dict form (`to_dict`, a JSON export) describes."""
        return data if isinstance(data, Report) else cls.model_validate(data)


def current_line(line: Any, verdicts: Mapping[str, str]) -> Any:
    """A stored verdict line (a dict) with an old status and verdict words read as today's."""
    if not isinstance(line, Mapping):
        return line
    out = dict(line)
    if isinstance(out.get("status"), str):
        out["status"] = current_status(out["status"], verdicts.get(str(out.get("name"))))
    if isinstance(out.get("why"), str):
        why = out["why"].replace("(inconclusive)", f"({current_verdict('inconclusive')})")
        out["why"] = why.replace("; no significant difference found (not proven equivalent)", "")
    return out


# --------------------------------------------------------------------------------------------
# `parity history` and `parity diff` (plain dicts: see the module docstring)
# --------------------------------------------------------------------------------------------

T = TypeVar("T")


class AccuracyFigure(TypedDict):
    """A solve rate and its 95% interval, fractions."""

    value: float
    low: float
    high: float


class ConformanceCount(TypedDict):
    """Checks passed, of those that applied."""

    passed: int
    judged: int


class HistoryRow(TypedDict):
    """One provider in one run, for `parity history`; with a metric asked, only that one of
    the figures (accuracy ... conformance) is there."""

    run_id: str
    created_at: float
    kind: str
    run_status: str
    vantage: str | None
    provider: str
    reference: bool
    accuracy: NotRequired[AccuracyFigure | None]
    verdict: NotRequired[str]
    status: NotRequired[str]
    ttft_p50: NotRequired[float | None]
    tok_s_p50: NotRequired[float | None]
    cost: NotRequired[float | None]
    conformance: NotRequired[ConformanceCount | None]


class HistoryPoint(TypedDict):
    """One provider in one run, for the HTML report's history chart."""

    name: str
    reference: bool
    accuracy: float | None
    accuracy_low: float | None
    accuracy_high: float | None
    ttft_p50: float | None
    tok_s_p50: float | None
    verdict: str
    status: str


class HistoryRun(TypedDict):
    """One run of the history chart, its providers in the run's order."""

    run_id: str
    created_at: float
    kind: str
    providers: list[HistoryPoint]


class AB(TypedDict, Generic[T]):
    """A figure in run A and in run B."""

    a: T
    b: T


class RunMeta(TypedDict):
    """Which run a diff side is."""

    id: str
    kind: str
    created_at: float
    status: str
    suite: Any  # the run's `suite` option as stored (None for a run without one)


class AccuracyDiff(TypedDict):
    """Accuracy from run A to run B: both solve rates and, when the runs are comparable, the
    paired difference B - A (`stats.estimates.Comparison`, samples renamed per side), or a
    note saying why it was not compared."""

    a: float | None
    b: float | None
    regression: bool
    note: NotRequired[str]
    diff: NotRequired[float]
    low: NotRequired[float]
    high: NotRequired[float]
    p_value: NotRequired[float]
    n_problems: NotRequired[int]
    margin: NotRequired[float]
    confidence: NotRequired[float]
    verdict: NotRequired[str]
    n_samples_b: NotRequired[int]
    n_samples_a: NotRequired[int]


class SpeedTest(TypedDict):
    """A speed metric from A to B: medians, relative change, Mann-Whitney p, sample sizes."""

    a_median: float
    b_median: float
    change: float
    p_value: float
    n_a: int
    n_b: int
    regression: bool
    improvement: bool


class Flip(TypedDict):
    """A conformance check whose status changed between the runs."""

    id: str
    a: str
    b: str
    figure_a: str
    figure_b: str
    bar: str


class ConformanceDiff(TypedDict):
    """Checks passed and judged in each run, and the checks that flipped."""

    passed: AB[int]
    judged: AB[int]
    newly_failing: list[Flip]
    newly_passing: list[Flip]


class ProviderDiff(TypedDict):
    """One provider present in both runs: its figures A -> B and the lines they gave."""

    name: str
    reachable: AB[bool]
    verdict: AB[str]
    status: AB[str]
    accuracy: AccuracyDiff
    speed: dict[str, SpeedTest]
    conformance: ConformanceDiff
    regressions: list[str]
    changes: list[str]


class DiffResult(TypedDict):
    """What `parity diff` found from run A to run B."""

    run_a: RunMeta
    run_b: RunMeta
    providers: list[ProviderDiff]
    only_in_a: list[str]
    only_in_b: list[str]
    regressions: list[str]
    changes: list[str]
