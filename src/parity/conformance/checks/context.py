"""Context window: does the provider serve the context it advertises, or fail loudly?"""

from __future__ import annotations

from parity.conformance.base import (
    BarRule,
    Check,
    CheckInput,
    CheckResult,
    PlanContext,
    Status,
    all_failed,
    evidence,
    outage,
    request,
)
from parity.core.exchange import Exchange
from parity.core.request import Request, user

FILL = 0.9  # the document fills 90% of the advertised window
DEPTHS = (0.25, 0.5, 0.9)  # where the needles sit, as fractions of the advertised window
CHARS_PER_TOKEN = 4  # a deliberately generous estimate for English prose (real: ~4-5)
SENTENCES = [
    "The morning market opened early and the baker sold warm bread to the first customers.",
    "A small boat drifted along the canal while two herons watched from the reeds.",
    "In the library, a student copied notes about rivers, mountains and old trade routes.",
    "The train to the coast was late again, so the travellers shared stories on the platform.",
]
NEEDLES = {0.25: ("north", "marmalade"), 0.5: ("east", "lighthouse"), 0.9: ("south", "cinnamon")}
TRUNCATION_SHARE = 0.02  # served prompt_tokens may fall short of the reference's by 2% ...
TRUNCATION_TOKENS = 32  # ... or 32 tokens (a chat template's difference), whichever is more
ESTIMATE_TOLERANCE = 0.5  # without a reference: below half the estimate is truncation
MAX_TOKENS = 64


def needle(depth: float) -> str:
    """The sentence hidden at `depth`."""
    gate, word = NEEDLES[depth]
    return f"The secret word of the {gate} gate is {word}."


def question(depth: float) -> str:
    """What the request at `depth` asks."""
    gate, _ = NEEDLES[depth]
    return f"What is the secret word of the {gate} gate in the text above? Answer with one word."


def document(target_tokens: int) -> str:
    """Filler prose of about `target_tokens` tokens with every needle at its depth. The same
    document serves the three questions, so an engine with prefix caching reads it once."""
    chars = target_tokens * CHARS_PER_TOKEN
    sentences: list[str] = []
    pending = sorted(DEPTHS)
    size = i = 0
    while size < chars:
        if pending and size >= pending[0] * chars / FILL:
            sentences.append(needle(pending.pop(0)))
        sentence = f"{i}. {SENTENCES[i % len(SENTENCES)]}"
        sentences.append(sentence)
        size += len(sentence) + 1
        i += 1
    sentences += [needle(d) for d in pending]
    return " ".join(sentences)


def long_prompt(target_tokens: int) -> str:
    """The document of about `target_tokens` tokens, then the question for the first needle."""
    return document(target_tokens) + "\n\n" + question(DEPTHS[0])


def _plan(ctx: PlanContext) -> list[Request]:
    if ctx.provider.context_window is None:
        return []
    target = int(ctx.provider.context_window * FILL)
    text = document(target)
    return [
        request(
            "context.needles",
            f"{target}/{depth}",
            {
                "messages": user(text + "\n\n" + question(depth)),
                "max_tokens": MAX_TOKENS,
                "temperature": 0,
            },
        )
        for depth in DEPTHS
    ]


def truncation_floor(expected: int) -> float:
    """The fewest prompt tokens a provider may bill for the document the reference billed
    `expected` for before it counts as truncated."""
    return expected - max(expected * TRUNCATION_SHARE, TRUNCATION_TOKENS)


def _found(x: Exchange, depth: float) -> bool:
    return x.ok and NEEDLES[depth][1] in x.text.lower()


def _judge(inp: CheckInput) -> CheckResult:
    if not inp.exchanges:
        return CheckResult(Status.NOT_APPLICABLE, "no context_window advertised", "-")
    items = sorted(inp.exchanges.items())
    target = int(items[0][0].split("/")[-2])
    window = inp.provider.context_window
    bar = (
        f"a ~{target}-token prompt ({FILL:.0%} of the advertised {window}) is served untruncated; "
        "needles the reference finds are found"
    )
    if (down := outage(inp.exchanges)) is not None:
        return down
    refused = [
        (k, x)
        for k, x in items
        if not x.ok and x.status is not None and 400 <= x.status < 500 and x.status != 429
    ]
    if refused:
        k, x = refused[0]
        return CheckResult(
            Status.FAIL,
            f"refused a ~{target}-token prompt with HTTP {x.status} (loudly)",
            bar,
            [evidence(k, x, problem="refused a prompt inside the advertised context window")],
        )
    if (failed := all_failed(inp)) is not None:
        return failed
    problems = []
    found = missed = 0
    for key, x in items:
        depth = float(key.rsplit("/", 1)[-1])
        got = x.prompt_tokens()
        ref = inp.reference.get(key) if inp.reference is not None else None
        expected = ref.prompt_tokens() if ref is not None else None
        if got is not None and expected is not None and got < truncation_floor(expected):
            problems.append(
                evidence(
                    key,
                    x,
                    problem=f"prompt_tokens {got} vs reference {expected}: silently truncated",
                )
            )
        elif got is not None and expected is None and got < target * ESTIMATE_TOLERANCE:
            problems.append(
                evidence(
                    key,
                    x,
                    problem=f"prompt_tokens {got} for a ~{target}-token prompt: silently truncated",
                )
            )
        hit = _found(x, depth)
        found += hit
        if ref is not None and _found(ref, depth) and not hit:
            missed += 1
            problems.append(
                evidence(key, x, problem=f"needle at {depth:.0%} not found; the reference found it")
            )
    served = [x.prompt_tokens() for _, x in items]
    figure = (
        f"served {max((s for s in served if s is not None), default='?')} prompt tokens; "
        f"needles found {found}/{len(items)}"
    )
    if problems:
        figure += f"; {problems[0]['problem']}"
    return CheckResult(Status.FAIL if problems else Status.PASS, figure, bar, problems)


ADVERTISED = Check(
    id="context.advertised",
    family="context window",
    checks="a document filling 90% of the advertised window, with needles at 25/50/90% of it, "
    "is served untruncated (or refused loudly: a fail, but an honest one); needles the "
    "reference finds are found",
    why="a provider serving a smaller window than it sells drops the start of long prompts "
    "or refuses them, and long-context work breaks",
    plan=_plan,
    judge=_judge,
    bar_rule=BarRule.REFERENCE_FIGURE,
    bar=f"served: prompt_tokens no more than {TRUNCATION_SHARE:.0%} (or {TRUNCATION_TOKENS} "
    "tokens) below the reference's for the same document (without a reference: at least half "
    "the estimate); every needle the reference finds is found; a 4xx refusal fails",
)
