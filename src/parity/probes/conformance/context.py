"""Context window: does the provider serve the context it advertises, or fail loudly?"""

from __future__ import annotations

from parity.probes.base import Request, user
from parity.probes.conformance.base import (
    Check,
    CheckInput,
    CheckResult,
    PlanContext,
    Status,
    all_failed,
    evidence,
    request,
)

FILL = 0.6  # fraction of the advertised window the prompt aims at
CHARS_PER_TOKEN = 4  # a deliberately generous estimate for English prose (real: ~4-5)
SENTENCES = [
    "The morning market opened early and the baker sold warm bread to the first customers.",
    "A small boat drifted along the canal while two herons watched from the reeds.",
    "In the library, a student copied notes about rivers, mountains and old trade routes.",
    "The train to the coast was late again, so the travellers shared stories on the platform.",
]
NEEDLE = "The secret word is marmalade."
QUESTION = "What is the secret word mentioned in the text above? Answer with one word."
TRUNCATION_TOLERANCE = 0.9


def long_prompt(target_tokens: int) -> str:
    """Filler prose of about `target_tokens` tokens with the needle in the middle."""
    chars = target_tokens * CHARS_PER_TOKEN
    sentences: list[str] = []
    size = 0
    i = 0
    while size < chars:
        sentence = f"{i}. {SENTENCES[i % len(SENTENCES)]}"
        sentences.append(sentence)
        size += len(sentence) + 1
        i += 1
    sentences.insert(len(sentences) // 2, NEEDLE)
    return " ".join(sentences) + "\n\n" + QUESTION


def _plan(ctx: PlanContext) -> list[Request]:
    if ctx.provider.context_window is None:
        return []
    target = int(ctx.provider.context_window * FILL)
    body = {"messages": user(long_prompt(target)), "max_tokens": 8, "temperature": 0}
    return [request("context.advertised", f"{target}", body)]


def _judge(inp: CheckInput) -> CheckResult:
    if not inp.exchanges:
        return CheckResult(Status.NOT_APPLICABLE, "no context_window advertised", "-")
    key, x = next(iter(inp.exchanges.items()))
    target = int(key.rsplit("/", 1)[-1])
    window = inp.provider.context_window
    bar = f"serves ~{target} prompt tokens ({FILL:.0%} of the advertised {window}), untruncated"
    if not x.ok and x.status is not None and 400 <= x.status < 500:
        return CheckResult(
            Status.FAIL,
            f"rejected a ~{target}-token prompt with HTTP {x.status}",
            bar,
            [evidence(key, x, problem="refused a prompt inside the advertised context window")],
        )
    if (failed := all_failed(inp)) is not None:
        return failed
    got = x.prompt_tokens()
    expected = None
    if inp.reference is not None and (ref := inp.reference.get(key)) is not None:
        expected = ref.prompt_tokens()
    if got is not None and expected is not None and got < expected * TRUNCATION_TOLERANCE:
        return CheckResult(
            Status.FAIL,
            f"prompt_tokens {got} vs reference {expected}: silently truncated",
            bar,
            [evidence(key, x, prompt_tokens=got, reference_prompt_tokens=expected)],
        )
    found = "marmalade" in x.text.lower()
    served = got if got is not None else "?"
    figure = f"served {served} prompt tokens; needle {'found' if found else 'not found'}"
    return CheckResult(Status.PASS, figure, bar)


ADVERTISED = Check(
    id="context.advertised",
    family="context window",
    checks="a prompt filling 60% of the advertised context window is served, not refused "
    "or silently truncated",
    why="a provider serving a smaller window than it sells drops the start of long prompts "
    "or refuses them, and long-context work breaks",
    plan=_plan,
    judge=_judge,
)
