"""`parity equiv`: is a provider's output distribution the reference's?

    parity equiv record providers.toml --provider REF --out ref.parity
    parity equiv test providers.toml --against ref.parity   # reference paid once
    parity equiv test providers.toml              # live reference (reference = true)

The commands parse options, call the library and print; what is sent is
`parity.equivalence.protocol`, the `.parity` file `parity.equivalence.recording`, how `test`
decides `parity.equivalence.run` (statistics: `parity.equivalence.statistics`), the table
`parity.report.equiv_table`.

Every exchange goes to the SQLite store (`--db`, a run of kind `equiv` / `equiv-record`)
under keys `equiv/<prompt>/<i>` (samples) and `equiv-lp/<prompt>/<r>` (logprobs); each
provider's decision is stored as result `equivalence/decision` and written with `--json`.
Exit code 1 when a provider is "different" (or unreachable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parity.cli.common import (
    DEFAULT_DB,
    ApiKeyEnv,
    BaseUrl,
    DbOption,
    ModelName,
    ReferenceModel,
    ReferenceUrl,
    VantageOption,
    err,
    exit_with,
    json_option,
    load_target,
    out,
    write_json,
)
from parity.core.errors import ConfigError
from parity.equivalence.recording import AskedSettings
from parity.equivalence.run import record_reference, test_providers
from parity.equivalence.statistics import (
    DEFAULT_LENGTH,
    DEFAULT_PERMUTATIONS,
    LOGPROB_METHOD,
    LOGPROB_STRICT_METHOD,
    MMD_METHOD,
    RANK_METHOD,
)
from parity.report.equiv_table import print_equiv, usd_suffix

__all__ = ["equiv_app"]

_SHORT = {"mmd": MMD_METHOD, "logprob": LOGPROB_METHOD, "rank": RANK_METHOD}

equiv_app = typer.Typer(
    help="Equivalence: a direct statistical test that a provider's output distribution is the "
    "reference's (MMD with a Hamming kernel on sampled completions; next-token logprobs). "
    "Record the reference once, then test providers against the recording.",
    no_args_is_help=True,
)


def _progress(line: str) -> None:
    err.print(line, highlight=False)


def _parse_methods(text: str, strict: bool) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in _SHORT]
    if unknown or not names:
        raise ConfigError(
            f"--methods: unknown {', '.join(unknown) or '(none)'}: use mmd, logprob, rank"
        )
    chosen = [_SHORT[m] for m in names]
    if strict:
        chosen = [LOGPROB_STRICT_METHOD if m == LOGPROB_METHOD else m for m in chosen]
    return list(dict.fromkeys(chosen))


def _asked(
    n_prompts: int | None,
    prompt_set: str | None,
    temperature: float | None,
    max_tokens: int | None,
    length: int | None,
    top_logprobs: int | None,
) -> AskedSettings:
    return AskedSettings(
        prompts=n_prompts,
        prompt_set=prompt_set,
        temperature=temperature,
        max_tokens=max_tokens,
        length=length,
        top_logprobs=top_logprobs,
    )


PromptsOption = Annotated[
    int | None, typer.Option("--prompts", min=1, help="Use the first N prompts of the set (40).")
]
PromptSetOption = Annotated[
    str | None,
    typer.Option(
        "--prompt-set",
        help="default (40 short prompts) or long[:Nk]: the same questions after N thousand "
        "tokens of filler each (3k).",
    ),
]
TemperatureOption = Annotated[float | None, typer.Option(help="Sampling temperature (1).")]
MaxTokensOption = Annotated[int | None, typer.Option(min=1, help="Tokens per sample (12).")]
LengthOption = Annotated[
    int | None,
    typer.Option(min=1, help=f"Kernel: compare the first N characters ({DEFAULT_LENGTH})."),
]
TopLogprobsOption = Annotated[
    int | None, typer.Option(min=1, max=20, help="top_logprobs of the logprob requests (5).")
]


@equiv_app.command("record")
def record(
    out_path: Annotated[Path, typer.Option("--out", help="Recording to write (.parity).")],
    providers_file: Annotated[
        Path | None, typer.Argument(help="Providers TOML file (or --base-url/--model).")
    ] = None,
    provider: Annotated[
        str | None, typer.Option(help="Provider to record (default: the reference).")
    ] = None,
    samples: Annotated[int, typer.Option(min=2, help="Samples per prompt.")] = 16,
    logprob_repeats: Annotated[
        int, typer.Option(min=0, help="Logprob passes over the prompts (0: none).")
    ] = 4,
    n_prompts: PromptsOption = None,
    prompt_set: PromptSetOption = None,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
    length: LengthOption = None,
    top_logprobs: TopLogprobsOption = None,
    db: DbOption = DEFAULT_DB,
    vantage: VantageOption = None,
    base_url: BaseUrl = None,
    model: ModelName = None,
    api_key_env: ApiKeyEnv = None,
    reference_url: ReferenceUrl = None,
    reference_model: ReferenceModel = None,
) -> None:
    """Sample the reference once and write a recording to test providers against later.

    Cost with the defaults: 40 prompts x 16 samples (12 output tokens each) plus 4 x 40
    one-token logprob requests: 800 requests, about 38k tokens with a 38-token prompt.
    """
    providers = load_target(
        providers_file, base_url, model, api_key_env, reference_url, reference_model
    )
    result = record_reference(
        db,
        providers,
        out_path,
        source=str(providers_file) if providers_file else None,
        provider=provider,
        samples=samples,
        logprob_repeats=logprob_repeats,
        asked=_asked(n_prompts, prompt_set, temperature, max_tokens, length, top_logprobs),
        progress=_progress,
    )
    side = result.recording.side
    out.print(
        f"recorded {result.provider.name}: {result.samples} samples, {result.logprob_tables} "
        f"logprob tables over {len(result.recording.prompts)} prompts, "
        f"{side.requests} requests ({side.errors} failed), "
        f"{side.prompt_tokens + side.completion_tokens} tokens{usd_suffix(side.usd)} "
        f"-> {result.path}",
        highlight=False,
    )


@equiv_app.command("test")
def test(
    providers_file: Annotated[
        Path | None, typer.Argument(help="Providers TOML file (or --base-url/--model).")
    ] = None,
    against: Annotated[
        Path | None,
        typer.Option(help="A recording (parity equiv record); default: the live reference."),
    ] = None,
    provider: Annotated[
        list[str] | None,
        typer.Option(help="Provider(s) to test (repeatable; default: every non-reference one)."),
    ] = None,
    samples: Annotated[
        int, typer.Option(min=2, help="Samples per prompt: the most the test may use.")
    ] = 8,
    adaptive: Annotated[
        bool,
        typer.Option(
            "--adaptive/--fixed",
            help="Adaptive: looks at 2, 4, ... samples per prompt, stop once decided "
            "(alpha spent over the looks). Fixed: one test at --samples.",
        ),
    ] = True,
    methods: Annotated[
        str, typer.Option(help="Comma-separated: mmd, logprob, rank (alpha split evenly).")
    ] = "mmd,logprob",
    logprob_repeats: Annotated[
        int, typer.Option(min=1, help="Logprob passes over the prompts, per side.")
    ] = 2,
    alpha: Annotated[float, typer.Option(min=1e-6, max=0.5, help="Error rate.")] = 0.05,
    permutations: Annotated[
        int, typer.Option(min=99, help="Permutations per test.")
    ] = DEFAULT_PERMUTATIONS,
    n_prompts: PromptsOption = None,
    prompt_set: PromptSetOption = None,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
    length: LengthOption = None,
    top_logprobs: TopLogprobsOption = None,
    any_model_name: Annotated[
        bool,
        typer.Option(help="Accept a provider whose model id differs from the recorded one."),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            help="Logprob test: any numeric difference beyond the reference's repeat noise "
            "is 'different' (other kernels or hardware too), not only a material one."
        ),
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Seed of the permutations.")] = None,
    db: DbOption = DEFAULT_DB,
    vantage: VantageOption = None,
    json_out: Annotated[Path | None, json_option("Write the results here.")] = None,
    base_url: BaseUrl = None,
    model: ModelName = None,
    api_key_env: ApiKeyEnv = None,
    reference_url: ReferenceUrl = None,
    reference_model: ReferenceModel = None,
) -> None:
    """Test each provider against the reference: verdict same / different / inconclusive.

    Prints per provider the verdict, the deciding method, p-value, effect size, samples used
    and cost. Cost per provider with the defaults: at most 40 prompts x 8 samples (12 tokens
    each; adaptive usually stops earlier) plus 2 x 40 one-token logprob requests. Exit code 1
    when a provider is different (or unreachable).
    """
    providers = load_target(
        providers_file, base_url, model, api_key_env, reference_url, reference_model
    )
    result = test_providers(
        db,
        providers,
        source=str(providers_file) if providers_file else None,
        against=against,
        names=provider,
        methods=_parse_methods(methods, strict),
        samples=samples,
        adaptive=adaptive,
        logprob_repeats=logprob_repeats,
        alpha=alpha,
        permutations=permutations,
        asked=_asked(n_prompts, prompt_set, temperature, max_tokens, length, top_logprobs),
        any_model_name=any_model_name,
        seed=seed,
        progress=_progress,
    )
    print_equiv(out, result)
    if json_out is not None:
        write_json(json_out, result.to_json())
    exit_with(1 if result.failed else 0)
