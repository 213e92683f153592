"""A store holding one finished fixed-design eval run on a GSM8K-style data set (read with a
column mapping and one few-shot example), built from synthetic exchanges: the reference
answers every problem right, `lossy` gets problem 3 wrong and fails one request, `thinker`
reasons before answering. Shared by the export tests (inspect_ai, lm-eval)."""

from __future__ import annotations

import json
from pathlib import Path

from parity.accuracy.evaluate import EvalOptions, fixed_requests, load_suite
from parity.core.config import Provider
from parity.core.exchange import ErrorClass, Exchange, Timings
from parity.core.store import Store

MS = 1_000_000
ROWS = [
    {"q": "Natalia sold 48 clips in April and half as many in May. How many?", "a": "#### 72"},
    {"q": "Weng earns $12 an hour for 50 minutes. How much?", "a": "12/60*50 = 10\n#### 10"},
    {"q": "What is 6 x 7?", "a": "#### 42"},
    {"q": "What is 1,000 + 1?", "a": "#### 1,001"},
    {"q": "How many legs do three spiders have?", "a": "#### 24"},
]
REPEATS = 2


def write_data(folder: Path) -> Path:
    path = folder / "gsm8k_style.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def eval_options(data: Path) -> EvalOptions:
    return EvalOptions(
        suite=str(data),
        fields={"input": "q", "target": "a"},
        scorer="numeric",
        few_shot=1,
        adaptive=False,
        repeats=REPEATS,
        sampling={"temperature": 0, "max_tokens": 64},
        system_prompt="Answer with a number.",
    )


def provider(name: str, reference: bool = False) -> Provider:
    return Provider(
        name=name,
        base_url=f"http://127.0.0.1:1/{name}/v1",
        model="smol-135m",
        reference=reference,
        price_input=0.1,
        price_output=0.4,
        context_window=4096,
    )


def _reply(body: dict[str, object], text: str, reasoning: str = "") -> Exchange:
    return Exchange(
        request=body,
        stream=False,
        timings=Timings(sent=0, end=250 * MS),
        status=200,
        text=text,
        reasoning=reasoning,
        finish_reason="stop",
        usage={"prompt_tokens": 40, "completion_tokens": 6, "total_tokens": 46},
    )


def make_eval_store(tmp_path: Path) -> tuple[Path, str, EvalOptions]:
    """(store path, run id, options) of a finished eval run with three providers."""
    options = eval_options(write_data(tmp_path))
    suite = load_suite(options)
    db = tmp_path / "p.db"
    with Store(db) as store:
        run_id = store.create_run("eval", "providers.toml", options.model_dump(), "test")
        for name in ("ref", "lossy", "thinker"):
            store.add_provider(run_id, name, provider(name, name == "ref").public_dict())
            store.set_reachability(run_id, name, True, "1 model(s)")
            for i, req in enumerate(fixed_requests(suite, options.repeats)):
                problem = next(p for p in suite.problems if req.key.split("/")[2] == p.id)
                answer = problem.answer.replace(",", "")
                if name == "lossy" and i == 0:
                    x = Exchange(
                        request=req.body,
                        stream=False,
                        timings=Timings(sent=0, end=MS),
                        status=503,
                        error=ErrorClass.HTTP_5XX,
                        error_detail="503 Service Unavailable",
                    )
                elif name == "lossy" and problem.id == "3":
                    x = _reply(req.body, "The answer is\n#### 41")
                elif name == "thinker":
                    x = _reply(req.body, f"#### {answer}", reasoning="Let me think step by step.")
                else:
                    x = _reply(req.body, f"So the answer is\n#### {answer}")
                store.add_exchange(run_id, name, req.probe, req.key, x)
        store.finish_run(run_id)
    return db, run_id, options
