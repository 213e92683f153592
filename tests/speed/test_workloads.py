"""Workloads: presets, custom shapes, unique prompts, lengths; bench presets and steps."""

from __future__ import annotations

import pytest

from parity.speed.plan import PRESETS, build_steps
from parity.speed.workloads import Workload, make_body, make_prompt, parse_workload


def test_presets_are_artificial_analysis_shapes() -> None:
    shapes = {name: (w.input_tokens, w.output_tokens) for name, w in PRESETS_W.items()}
    assert shapes == {
        "100": (100, 300),
        "1k": (1000, 1000),
        "10k": (10000, 1500),
        "100k": (100000, 2000),
    }


PRESETS_W = {name: parse_workload(name) for name in ("100", "1k", "10k", "100k")}


def test_custom_shapes() -> None:
    assert parse_workload("2000/16") == Workload("2000x16", 2000, 16)
    assert parse_workload("2k x 16") == Workload("2000x16", 2000, 16)
    assert parse_workload("1.5k:300").input_tokens == 1500
    for bad in ("", "abc", "0/10", "10/0", "1k/"):
        with pytest.raises(ValueError):
            parse_workload(bad)


def test_prompts_are_unique_from_the_first_token_and_deterministic() -> None:
    w = parse_workload("1k")
    prompts = [make_prompt(w, f"run/1k/c4/{i}") for i in range(50)]
    assert len(set(prompts)) == 50
    assert len({p[:12] for p in prompts}) == 50  # no shared prefix a cache could reuse
    assert make_prompt(w, "run/1k/c4/3") == prompts[3]


def test_lengths_without_a_tokenizer_follow_the_target() -> None:
    # One filler word (one token in the usual vocabularies) per token beyond a fixed overhead.
    words = {name: len(make_prompt(w, "t").split()) for name, w in PRESETS_W.items()}
    assert words["1k"] - words["100"] == 900
    assert words["100k"] - words["10k"] == 90_000
    assert words["100"] < 100


def test_a_counter_steers_the_prompt_to_the_exact_length() -> None:
    def counter(text: str) -> int:  # a toy tokenizer: 2 tokens per word, 20 for the template
        return 20 + 2 * len(text.split())

    w = Workload("t", 600, 10)
    prompt = make_prompt(w, "x", counter)
    assert abs(counter(prompt) - 600) <= 2


def test_body_asks_for_the_output_length() -> None:
    body = make_body(parse_workload("100"), "t", temperature=0.5, extra={"ignore_eos": True})
    assert body["max_tokens"] == 300 and body["temperature"] == 0.5 and body["ignore_eos"]
    assert "about 225 words" in body["messages"][0]["content"]


def test_steps_from_presets_and_overrides() -> None:
    assert set(PRESETS) >= {"quick", "standard", "aa", "sweep", "load"}
    quick = build_steps("quick")
    assert [s.workload.name for s in quick] == ["100x32", "10k"]
    steps = build_steps("standard", ["100", "1k"], ["c2", "rate=3"], requests=7, warmup=0)
    assert [(s.workload.name, s.load.name) for s in steps] == [
        ("100", "c2"),
        ("100", "poisson3"),
        ("1k", "c2"),
        ("1k", "poisson3"),
    ]
    assert all(s.requests == 7 and s.warmup == 0 for s in steps)
    timed = build_steps("load", requests=0, duration_s=5.0)
    assert timed[0].requests is None and timed[0].duration_s == 5.0
    with pytest.raises(ValueError):
        build_steps("nope")
    with pytest.raises(ValueError):
        build_steps("standard", requests=0)
