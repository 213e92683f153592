"""An eval run as inspect_ai eval logs: `read_eval_log` reads them, `inspect view` opens them.

One log per provider (inspect_ai logs one model per task), written as the JSON log format
(`EvalLog`, format version 2) without importing inspect_ai: `eval` (task = the suite, model =
`<provider>/<model>`, the dataset, the generate config, epochs = repeats), `plan` (one
`generate` step), `results` (the suite's scorer with `accuracy` and `stderr` over problems),
`stats` (token usage) and one sample per (problem, repeat): `id` the problem, `epoch` the
repeat + 1, `input` the prompt (or the chat, when it has several messages), `target` the
answer, `messages` and `output` the exchange, `scores` the parity score (1.0 or 0.0),
`metadata` its parity key, scorer and the ids that match it with the provider's logs
(`request_id`, `response_id`, `provider_ids`, `attempt_ids` when retried: those it has);
a failed request is a sample with an `error` and no score.

`inspect_logs(store, run_id)` is a pure function of the store; `write_inspect_logs` writes
the files (`PATH/<provider>/<created>_<suite>_<run>.json`, named as inspect_ai names its
logs so that `inspect view` lists task and id, or PATH itself for a single
provider when it ends in `.json`) and returns their paths.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parity import __version__
from parity.core.store import Store
from parity.report.eval_samples import (
    EvalExport,
    ProviderSamples,
    Sample,
    eval_export,
    export_paths,
    safe_name,
)

__all__ = ["LOG_VERSION", "inspect_log", "inspect_logs", "write_inspect_logs"]

LOG_VERSION = 2
"""inspect_ai's `EvalLog.version` this writes."""

_STOP = {
    "stop": "stop",
    "length": "max_tokens",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
_GENERATE_KEYS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "seed": "seed",
    "reasoning_effort": "reasoning_effort",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "stop": "stop_seqs",
}


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _scorer_name(export: EvalExport) -> str:
    score = export.suite.score
    default = getattr(score, "default", score)
    return str(getattr(default, "__name__", "score"))


def _generate_config(export: EvalExport) -> dict[str, Any]:
    config = {}
    for key, value in export.suite.sampling.items():
        if key in _GENERATE_KEYS:
            config[_GENERATE_KEYS[key]] = (
                [value] if key == "stop" and isinstance(value, str) else value
            )
    return config


def _message(m: dict[str, Any]) -> dict[str, Any]:
    role = str(m.get("role", "user"))
    content = m.get("content", "")
    if not isinstance(content, str):
        content = json.dumps(content)
    return {
        "role": role if role in ("system", "user", "assistant", "tool") else "user",
        "content": content,
    }


def _assistant(sample: Sample, model: str) -> dict[str, Any]:
    content: str | list[dict[str, Any]] = sample.reply
    if sample.reasoning:
        content = [
            {"type": "reasoning", "reasoning": sample.reasoning},
            {"type": "text", "text": sample.reply},
        ]
    return {"role": "assistant", "content": content, "source": "generate", "model": model}


def _usage(prompt: int | None, completion: int | None) -> dict[str, int]:
    p, c = prompt or 0, completion or 0
    return {"input_tokens": p, "output_tokens": c, "total_tokens": p + c}


def _sample(export: EvalExport, sample: Sample, model: str, scorer: str) -> dict[str, Any]:
    sent = [_message(m) for m in sample.messages]
    non_system = [m for m in sent if m["role"] != "system"]
    data: dict[str, Any] = {
        "id": sample.problem.id,
        "epoch": sample.repeat + 1,
        "input": sample.problem.prompt if len(non_system) <= 1 and len(sent) <= 1 else sent,
        "target": sample.problem.answer,
        "messages": sent,
        "output": {"model": model, "choices": [], "completion": ""},
        "metadata": {
            "parity_key": sample.key,
            "scorer": sample.problem.scorer or scorer,
            **sample.ids,
        },
        "store": {},
        "events": [],
        "model_usage": {},
    }
    if sample.error is not None:
        data["error"] = {
            "message": f"{sample.error}: {sample.error_detail or ''}".strip(": "),
            "traceback": "",
            "traceback_ansi": "",
        }
        data["output"]["error"] = data["error"]["message"]
        return data
    usage = _usage(sample.prompt_tokens, sample.completion_tokens)
    reply = _assistant(sample, model)
    data["messages"] = [*sent, reply]
    data["output"] = {
        "model": model,
        "choices": [
            {"message": reply, "stop_reason": _STOP.get(sample.finish_reason or "", "unknown")}
        ],
        "completion": sample.reply,
        "usage": usage,
        "time": sample.e2e_ms / 1000 if sample.e2e_ms is not None else None,
    }
    data["model_usage"] = {model: usage}
    data["scores"] = {
        scorer: {
            "value": sample.score,
            "answer": sample.reply[-200:],
            "explanation": f"parity scorer {sample.problem.scorer or scorer}",
            "metadata": {"target": sample.problem.answer},
        }
    }
    if sample.e2e_ms is not None:
        data["total_time"] = data["working_time"] = sample.e2e_ms / 1000
    return data


def inspect_log(export: EvalExport, provider: ProviderSamples) -> dict[str, Any]:
    """One provider's eval log (a dict in inspect_ai's `EvalLog` JSON form)."""
    run, options, suite = export.run, export.options, export.suite
    model = f"{provider.name}/{provider.config.get('model') or 'model'}"
    scorer = _scorer_name(export)
    value, stderr = provider.accuracy()
    scored = sum(s.score is not None for s in provider.samples)
    metrics: dict[str, Any] = {}
    if value is not None:
        metrics["accuracy"] = {"name": "accuracy", "value": value, "params": {}}
        if stderr is not None:
            metrics["stderr"] = {"name": "stderr", "value": stderr, "params": {}}
    usage = _usage(
        sum(s.prompt_tokens or 0 for s in provider.samples),
        sum(s.completion_tokens or 0 for s in provider.samples),
    )
    status = {"finished": "success", "interrupted": "cancelled", "failed": "error"}
    task_args = {
        k: v
        for k, v in options.model_dump().items()
        if v not in (None, {}, []) and k not in ("sampling", "system_prompt")
    }
    return {
        "version": LOG_VERSION,
        "status": status.get(run.status, "started"),
        "eval": {
            "eval_id": f"{run.id}-{safe_name(provider.name)}",
            "run_id": run.id,
            "created": _iso(run.created_at),
            "task": suite.name,
            "task_id": f"{run.id}-{suite.name}",
            "task_version": 0,
            "task_display_name": suite.name,
            "task_description": suite.description,
            "task_attribs": {},
            "task_args": task_args,
            "task_args_passed": task_args,
            "solver": "generate",
            "dataset": {
                "name": suite.name,
                "location": options.suite,
                "samples": len(suite.problems),
                "sample_ids": [p.id for p in suite.problems],
                "shuffled": False,
            },
            "model": model,
            "model_base_url": provider.config.get("base_url"),
            "model_generate_config": _generate_config(export),
            "model_args": {},
            "config": {"epochs": options.repeats, "limit": options.limit},
            "packages": {"parity": __version__},
            "metadata": {
                "parity_run": run.id,
                "provider": provider.name,
                "reference": bool(provider.config.get("reference")),
                "design": "adaptive" if options.adaptive else "fixed",
                "system_prompt": suite.system_prompt,
            },
            "scorers": [
                {
                    "name": scorer,
                    "options": {},
                    "metrics": [{"name": "accuracy"}, {"name": "stderr"}],
                    "metadata": {},
                }
            ],
        },
        "plan": {
            "name": "plan",
            "steps": [{"solver": "generate", "params": {}}],
            "config": _generate_config(export),
        },
        "results": {
            "total_samples": len(provider.samples),
            "completed_samples": scored,
            "scores": [
                {
                    "name": scorer,
                    "scorer": scorer,
                    "reducer": "mean" if options.repeats > 1 else None,
                    "scored_samples": scored,
                    "unscored_samples": len(provider.samples) - scored,
                    "params": {},
                    "metrics": metrics,
                }
            ],
        },
        "stats": {
            "started_at": _iso(run.created_at),
            "completed_at": _iso(run.finished_at),
            "model_usage": {model: usage} if provider.samples else {},
        },
        "tags": ["parity"],
        "metadata": {},
        "samples": [_sample(export, s, model, scorer) for s in provider.samples],
    }


def inspect_logs(store: Store, run_id: str) -> dict[str, dict[str, Any]]:
    """Every provider's eval log of an eval run, by provider name (see `inspect_log`)."""
    export = eval_export(store, run_id)
    return {p.name: inspect_log(export, p) for p in export.providers}


def write_inspect_logs(store: Store, run_id: str, path: Path) -> list[Path]:
    """Write the run's logs under `path` (see the module docstring); returns the files."""
    logs = inspect_logs(store, run_id)
    created = next(iter(logs.values()))["eval"]["created"] if logs else ""
    stamp = created[:19].replace(":", "-") + "+00-00"
    task = next(iter(logs.values()))["eval"]["task"] if logs else "eval"
    # inspect's own names: {timestamp}_{task}_{id}, task without '_' and id without '-'
    task_part = safe_name(task).replace("_", "-")
    name = f"{stamp}_{task_part}_{run_id.replace('-', '')}.json"
    paths = export_paths(path, list(logs), name)
    for name, log in logs.items():
        paths[name].parent.mkdir(parents=True, exist_ok=True)
        paths[name].write_text(json.dumps(log, indent=2, default=str) + "\n", encoding="utf-8")
    return list(paths.values())
