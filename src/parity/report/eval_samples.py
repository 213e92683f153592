"""An eval run's samples as the exports for other tools read them, from the store alone.

`eval_export(store, run_id)` gathers what `inspect_log` and `lm_eval` write: the run, its
options and suite (rebuilt from the stored `EvalOptions`, so a data set is read again the
same way), each provider's settings, parity's own result (`analyse_eval`) and every stored
sample: the problem, the repeat, the
messages sent, the reply, its score (None for a failed request), its token usage and the
ids that match it with the provider's logs (`Exchange.log_ids`).
`export_paths` says where one file per provider goes.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parity.accuracy.evaluate import PROBE, EvalOptions, analyse_eval, load_suite
from parity.accuracy.suites import Problem, Suite
from parity.core.analysis import stored_providers
from parity.core.errors import ConfigError
from parity.core.store import RunInfo, Store

__all__ = ["EvalExport", "ProviderSamples", "Sample", "eval_export", "export_paths", "safe_name"]


@dataclass(frozen=True)
class Sample:
    """One stored (problem, repeat) of one provider."""

    problem: Problem
    repeat: int  # 0-based sample index
    key: str
    messages: list[dict[str, Any]]
    reply: str
    reasoning: str
    score: float | None
    error: str | None
    error_detail: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    e2e_ms: float | None
    ids: dict[str, Any] = field(default_factory=dict)
    """`Exchange.log_ids`: the request id sent and the provider's ids, those it has."""


@dataclass
class ProviderSamples:
    """A provider's settings (as stored) and its samples in plan order."""

    config: dict[str, Any]
    samples: list[Sample] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The provider's name."""
        return str(self.config["name"])

    def per_problem(self) -> dict[str, list[float]]:
        """Scores of the graded samples, by problem id (failed requests left out)."""
        out: dict[str, list[float]] = {}
        for s in self.samples:
            if s.score is not None:
                out.setdefault(s.problem.id, []).append(s.score)
        return out

    def accuracy(self) -> tuple[float | None, float | None]:
        """(mean over problems of their mean score, its standard error), lm-eval's way: the
        sample standard deviation of the per-problem means over sqrt(problems); None when
        there is no graded sample (the error also with a single problem)."""
        means = [sum(v) / len(v) for v in self.per_problem().values()]
        if not means:
            return None, None
        value = sum(means) / len(means)
        stderr = statistics.stdev(means) / len(means) ** 0.5 if len(means) > 1 else None
        return value, stderr


@dataclass
class EvalExport:
    """Everything an eval export needs, from the store."""

    run: RunInfo
    options: EvalOptions
    suite: Suite
    providers: list[ProviderSamples]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    """`analyse_eval`'s result per provider: parity's estimate, interval and verdict."""


def eval_export(store: Store, run_id: str) -> EvalExport:
    """An eval run's suite and samples. Raises `ConfigError` (one line) when the store has no
    such run or it is not an eval run."""
    info = store.run(run_id)
    if info is None:
        raise ConfigError(f"no run {run_id!r} in the store")
    if info.kind != "eval":
        raise ConfigError(
            f"{run_id} is a {info.kind} run: the inspect_ai and lm-eval exports are of "
            "parity eval runs"
        )
    options = EvalOptions(**info.options)
    suite = load_suite(options)
    problems = {p.id: p for p in suite.problems}
    order = {p.id: i for i, p in enumerate(suite.problems)}
    providers = []
    for config in store.providers(run_id):
        entry = ProviderSamples(config)
        for item in store.exchanges(run_id, config["name"], PROBE):
            parts = item.key.split("/")
            problem = problems.get(parts[2]) if len(parts) == 4 else None
            if problem is None:
                continue
            x = item.exchange
            messages = x.request.get("messages")
            entry.samples.append(
                Sample(
                    problem=problem,
                    repeat=int(parts[3]),
                    key=item.key,
                    messages=list(messages) if isinstance(messages, list) else [],
                    reply=x.text,
                    reasoning=x.reasoning,
                    score=suite.grade(problem, x.text) if x.ok else None,
                    error=x.error.value if x.error else None,
                    error_detail=x.error_detail,
                    finish_reason=x.finish_reason,
                    prompt_tokens=x.prompt_tokens(),
                    completion_tokens=x.completion_tokens(),
                    e2e_ms=x.e2e_ms(),
                    ids=x.log_ids(),
                )
            )
        entry.samples.sort(key=lambda s: (order[s.problem.id], s.repeat))
        providers.append(entry)
    results = {
        r["name"]: r for r in analyse_eval(store, run_id, stored_providers(store, run_id), options)
    }
    return EvalExport(info, options, suite, providers, results)


def safe_name(text: str) -> str:
    """`text` with anything but letters, digits, '.', '_' and '-' turned into '_'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text) or "_"


def export_paths(path: Path, providers: Sequence[str], file_name: str) -> dict[str, Path]:
    """Where each provider's file goes: `path` itself when it ends in `.json` and there is one
    provider, `<stem>-<provider>.json` beside it when there are several, else
    `path/<provider>/<file_name>` (a folder, lm-eval's and inspect's layout)."""
    if path.suffix == ".json":
        if len(providers) == 1:
            return {providers[0]: path}
        return {p: path.with_name(f"{path.stem}-{safe_name(p)}.json") for p in providers}
    return {p: path / safe_name(p) / file_name for p in providers}
