"""Price: list prices, what the bench itself cost, and cost per correct answer.

- List: input, output and blended (3 x input + 1 x output) / 4, $ per 1M tokens, from the
  providers file.
- Measured: the run's cost from the provider's own `usage` (every exchange the bench sent,
  warmups and failures included: they are billed too). Streams without usage (llama.cpp's
  server ignores `include_usage`) are costed from the local tokenizer's counts, or the
  chunk count for output, and the result says so (`cost_from`).
- Effective $ per 1M output tokens: measured cost / output tokens x 1e6: what an output
  token really cost, input included.
- Cost per correct answer: from the newest accuracy result for the same provider (same
  name and model) in the store: that evaluation's cost / its correct answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from parity.core.config import Provider
from parity.core.store import Store

__all__ = ["Cost", "accuracy_cost", "list_prices", "measured_cost"]


def list_prices(provider: Provider) -> dict[str, float | None]:
    """Input, output and blended list prices, $ per 1M tokens (None when not given)."""
    return {
        "input": provider.price_input,
        "output": provider.price_output,
        "blended": provider.blended_price(),
    }


@dataclass
class Cost:
    """What a set of exchanges cost, and where the token counts came from."""

    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    usd_per_1m_output: float | None
    cost_from: str  # "usage", "usage+estimate", "estimate", "none"
    requests_with_usage: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def measured_cost(
    provider: Provider,
    counts: Sequence[tuple[int | None, int | None, int | None, int | None]],
) -> Cost:
    """Cost of exchanges given as (usage prompt, usage completion, estimated prompt,
    estimated completion) tokens each; the estimate (local tokenizer or chunk count) is
    used only where usage is missing. `cost_usd` is None without list prices."""
    prompt_total = completion_total = 0
    with_usage = estimated = 0
    for usage_in, usage_out, est_in, est_out in counts:
        if usage_in is not None and usage_out is not None:
            with_usage += 1
            prompt_total += usage_in
            completion_total += usage_out
        elif est_in is not None or est_out is not None or usage_in is not None:
            estimated += 1
            prompt_total += usage_in if usage_in is not None else (est_in or 0)
            completion_total += usage_out if usage_out is not None else (est_out or 0)
    if with_usage and estimated:
        source = "usage+estimate"
    elif with_usage:
        source = "usage"
    elif estimated:
        source = "estimate"
    else:
        source = "none"
    cost = provider.cost_usd(prompt_total, completion_total) if source != "none" else None
    per_output = cost / completion_total * 1e6 if cost is not None and completion_total else None
    return Cost(
        requests=len(counts),
        input_tokens=prompt_total,
        output_tokens=completion_total,
        cost_usd=cost,
        usd_per_1m_output=per_output,
        cost_from=source,
        requests_with_usage=with_usage,
    )


def accuracy_cost(
    store: Store, provider: Provider, exclude_run: str | None = None
) -> dict[str, Any] | None:
    """The newest stored accuracy result for `provider` (same name and model) with its cost
    per correct answer, or None when the store has none.

    From `parity eval` results: the eval's own cost (usage at list prices) / (accuracy x
    samples). From `parity run` summaries: the cost of that run's accuracy exchanges /
    (accuracy x samples).
    """
    for run in store.runs():
        if run.id == exclude_run or run.kind == "bench":
            continue
        models = {p["name"]: p.get("model") for p in store.providers(run.id)}
        if models.get(provider.name) != provider.model:
            continue
        for name_, pillar, name, value in store.results(run.id):
            if name_ != provider.name or not isinstance(value, dict):
                continue
            if pillar == "accuracy" and name == "eval":
                found = _from_eval(value)
            elif pillar == "summary" and name == "provider":
                found = _from_run(store, run.id, provider, value)
            else:
                continue
            if found is not None:
                found["run"] = run.id
                found["kind"] = run.kind
                return found
    return None


def _per_correct(accuracy: float, samples: int, cost: float | None) -> dict[str, Any]:
    correct = accuracy * samples
    return {
        "accuracy": accuracy,
        "samples": samples,
        "correct": correct,
        "cost_usd": cost,
        "cost_per_correct_usd": cost / correct if cost is not None and correct > 0 else None,
    }


def _from_eval(value: dict[str, Any]) -> dict[str, Any] | None:
    estimate = value.get("accuracy")
    samples = value.get("samples")
    if not isinstance(estimate, dict) or not isinstance(samples, int) or samples <= 0:
        return None
    out = _per_correct(float(estimate["value"]), samples, value.get("cost_usd"))
    out["suite"] = value.get("suite")
    return out


def _from_run(
    store: Store, run_id: str, provider: Provider, value: dict[str, Any]
) -> dict[str, Any] | None:
    acc = value.get("accuracy")
    estimate = acc.get("accuracy") if isinstance(acc, dict) else None
    if not isinstance(estimate, dict):
        return None
    prompt = completion = 0
    for item in store.exchanges(run_id, provider.name, "accuracy"):
        prompt += item.exchange.prompt_tokens() or 0
        completion += item.exchange.completion_tokens() or 0
    out = _per_correct(
        float(estimate["value"]),
        int(estimate["n_samples"]),
        provider.cost_usd(prompt, completion),
    )
    out["suite"] = acc.get("suite") if isinstance(acc, dict) else None
    return out
