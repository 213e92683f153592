"""An eval run as lm-eval (lm-evaluation-harness) results: the JSON `simple_evaluate` returns
and `EvaluationTracker` saves, and its per-sample JSONL.

One results file per provider (lm-eval evaluates one model at a time), with the fields of
lm-eval's `EvalResults` (lm_eval/result_schema.py):

- `results`: `{task: {"name", "alias", "sample_len", "acc,none", "acc_stderr,none"}}`; the
  task is the suite, `acc` the mean over problems of each problem's mean score and
  `acc_stderr` lm-eval's (the sample standard deviation of those means over
  sqrt(problems); "N/A" for one problem);
- `group_subtasks`, `configs` (the task config: dataset, split, few-shot, generation
  settings, repeats, metric list), `versions`, `n-shot`, `higher_is_better`, `n-samples`;
- `config` (model, model_args with the provider's base URL, gen_kwargs, limit, seeds),
  `date`, `model_source` ("local-chat-completions", lm-eval's name for an
  OpenAI-compatible chat API), `model_name`, `model_name_sanitized`, `system_instruction`
  (+ sha256), `fewshot_as_multiturn` (parity sends few-shot examples as turns) and
  `total_evaluation_time_seconds`.

Parity's own figures (bootstrap CI, verdict, run id, design) are under
`configs[task]["metadata"]["parity"]`, and so are the ids that match each sample with the
provider's logs: `request_ids` `{doc_id: [one dict per repeat: repeat, request_id,
response_id, provider_ids, attempt_ids when retried]}` (a sample line may hold no key but
lm-eval's own and float metrics).

Samples (`samples_<task>_<date>.jsonl`, lm-eval's `SampleResult`): one line per problem:
`doc_id`, `doc` (id, input, target), `target`, `arguments` (the prompt and gen_kwargs),
`resps` (every repeat's reply), `filtered_resps`, `filter` "none", `metrics` ["acc"], `acc`
(the problem's mean score) and sha256 `doc_hash`, `prompt_hash`, `target_hash`.

`lm_eval_results(store, run_id)` is a pure function of the store; `write_lm_eval` writes
`PATH/<provider>/results_<date>.json` and the samples beside it (lm-eval's layout), or PATH
itself for a single provider when it ends in `.json`.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parity import __version__
from parity.core.store import Store
from parity.report.eval_samples import EvalExport, ProviderSamples, eval_export, export_paths

__all__ = ["MODEL_SOURCE", "lm_eval_results", "lm_eval_samples", "write_lm_eval"]

MODEL_SOURCE = "local-chat-completions"
"""lm-eval's model type for an OpenAI-compatible chat completions API."""
FILTER = "none"
METRIC = "acc"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _sanitized(model: str) -> str:
    """lm-eval's `sanitize_model_name`: path separators and odd characters to '__'."""
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", model)


def _date_id(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace(":", "-")[:26]


def lm_eval_result(export: EvalExport, provider: ProviderSamples) -> dict[str, Any]:
    """One provider's results dict, in lm-eval's `EvalResults` shape."""
    run, options, suite = export.run, export.options, export.suite
    task = suite.name
    model = str(provider.config.get("model") or provider.name)
    value, stderr = provider.accuracy()
    shots = options.few_shot or 0
    sampled = {s.problem.id for s in provider.samples}
    metrics: dict[str, Any] = {"name": task, "alias": task, "sample_len": len(sampled)}
    if value is not None:
        metrics[f"{METRIC},{FILTER}"] = value
        metrics[f"{METRIC}_stderr,{FILTER}"] = stderr if stderr is not None else "N/A"
    base_url = provider.config.get("base_url")
    gen_kwargs = dict(suite.sampling)
    parity = export.results.get(provider.name) or {}
    return {
        "results": {task: metrics},
        "group_subtasks": {task: []},
        "configs": {
            task: {
                "task": task,
                "dataset_path": options.suite,
                "test_split": options.split or "test",
                "output_type": "generate_until",
                "num_fewshot": shots,
                "fewshot_config": {"sampler": "random", "seed": options.few_shot_seed or 0},
                "description": suite.system_prompt or "",
                "target_delimiter": " ",
                "fewshot_delimiter": "\n\n",
                "metric_list": [
                    {"metric": METRIC, "aggregation": "mean", "higher_is_better": True}
                ],
                "generation_kwargs": gen_kwargs,
                "repeats": options.repeats,
                "should_decontaminate": False,
                "metadata": {
                    "version": 1.0,
                    "parity": {
                        "version": __version__,
                        "run": run.id,
                        "provider": provider.name,
                        "reference": bool(provider.config.get("reference")),
                        "design": "adaptive" if options.adaptive else "fixed",
                        "scorer": getattr(
                            getattr(suite.score, "default", suite.score), "__name__", None
                        ),
                        "accuracy": parity.get("accuracy"),
                        "vs_reference": parity.get("vs_reference"),
                        **_request_ids(export, provider),
                    },
                },
            }
        },
        "versions": {task: 1.0},
        "n-shot": {task: shots},
        "higher_is_better": {task: {METRIC: True}},
        "n-samples": {task: {"original": len(suite.problems), "effective": len(sampled)}},
        "config": {
            "model": MODEL_SOURCE,
            "model_args": f"model={model},base_url={base_url}",
            "batch_size": "1",
            "batch_sizes": [],
            "device": None,
            "use_cache": None,
            "limit": options.limit,
            "bootstrap_iters": 0,
            "gen_kwargs": gen_kwargs,
            "random_seed": options.seed,
            "numpy_seed": options.seed,
            "torch_seed": options.seed,
            "fewshot_seed": options.few_shot_seed or 0,
        },
        "date": run.created_at,
        "model_source": MODEL_SOURCE,
        "model_name": model,
        "model_name_sanitized": _sanitized(model),
        "system_instruction": suite.system_prompt,
        "system_instruction_sha": _sha(suite.system_prompt) if suite.system_prompt else None,
        "fewshot_as_multiturn": shots > 0,
        "chat_template": None,
        "chat_template_sha": None,
        "total_evaluation_time_seconds": str(
            (run.finished_at - run.created_at) if run.finished_at else 0.0
        ),
    }


def _request_ids(export: EvalExport, provider: ProviderSamples) -> dict[str, Any]:
    """`{"request_ids": {doc_id: [{"repeat": r, **ids}, ...]}}` (`Exchange.log_ids`, keyed as
    the sample lines' `doc_id`, repeats 0-based), or {} when no sample has any. They live
    here because lm-eval's `SampleResult` allows no key but floats beyond its own."""
    doc_ids = {problem.id: index for index, problem in enumerate(export.suite.problems)}
    found: dict[str, list[dict[str, Any]]] = {}
    for s in provider.samples:
        found.setdefault(str(doc_ids[s.problem.id]), []).append({"repeat": s.repeat, **s.ids})
    if not any(s.ids for s in provider.samples):
        return {}
    return {"request_ids": found}


def lm_eval_samples(export: EvalExport, provider: ProviderSamples) -> list[dict[str, Any]]:
    """One provider's per-problem sample records, in lm-eval's `SampleResult` shape."""
    by_problem: dict[str, list[Any]] = {}
    for s in provider.samples:
        by_problem.setdefault(s.problem.id, []).append(s)
    gen_kwargs = dict(export.suite.sampling)
    out = []
    for doc_id, problem in enumerate(export.suite.problems):
        samples = by_problem.get(problem.id)
        if not samples:
            continue
        prompt = json.dumps(samples[0].messages, ensure_ascii=False)
        scores = [s.score for s in samples if s.score is not None]
        doc = {"id": problem.id, "input": problem.prompt, "target": problem.answer}
        replies = [s.reply for s in samples]
        out.append(
            {
                "doc_id": doc_id,
                "doc": doc,
                "target": problem.answer,
                "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": gen_kwargs}},
                "resps": [replies],
                "filtered_resps": replies,
                "filter": FILTER,
                "metrics": [METRIC],
                METRIC: sum(scores) / len(scores) if scores else 0.0,
                "doc_hash": _sha(json.dumps(doc, sort_keys=True, ensure_ascii=False)),
                "prompt_hash": _sha(prompt),
                "target_hash": _sha(problem.answer),
            }
        )
    return out


def lm_eval_results(store: Store, run_id: str) -> dict[str, dict[str, Any]]:
    """Every provider's lm-eval results dict, by provider name (see `lm_eval_result`)."""
    export = eval_export(store, run_id)
    return {p.name: lm_eval_result(export, p) for p in export.providers}


def write_lm_eval(store: Store, run_id: str, path: Path) -> list[Path]:
    """Write each provider's results and samples (see the module docstring); returns the
    results files."""
    export = eval_export(store, run_id)
    date = _date_id(export.run.created_at)
    names = [p.name for p in export.providers]
    paths = export_paths(path, names, f"results_{date}.json")
    for provider in export.providers:
        target = paths[provider.name]
        target.parent.mkdir(parents=True, exist_ok=True)
        result = lm_eval_result(export, provider)
        target.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        samples = target.parent / f"samples_{export.suite.name}_{date}.jsonl"
        if path.suffix == ".json":
            samples = target.with_name(f"{target.stem}.samples_{export.suite.name}.jsonl")
        samples.write_text(
            "".join(
                json.dumps(r, ensure_ascii=False, default=str) + "\n"
                for r in lm_eval_samples(export, provider)
            ),
            encoding="utf-8",
        )
    return list(paths.values())
