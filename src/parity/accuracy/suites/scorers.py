"""Scorers: grade a reply against a reference answer, returning 1.0 or 0.0.

Every scorer is `scorer(reply, answer) -> float`, pure (the result depends only on the two
strings; `math_equivalent` also on a time bound) and safe to call from any thread. A scorer
raises ValueError when the *answer* cannot be what it grades against (e.g. `aime` with a
non-integer answer): that is a bug in the suite, found up front by `check_answer`.

`SCORERS` maps the names written in suite files to the functions:

==================  ===========================================================
`aime`              last `\\boxed{}` (else last number) as an integer, gpt-oss style
`numeric`           final number (after `####`, else last box, else last number)
`math`              symbolic/numeric equivalence with math-verify (bounded)
`exact`             equality after strip + casefold
`multiple_choice`   a letter A-J ("Answer: C", "(C)", "C.")
`regex`             the answer is a regular expression that must match the reply
`last_integer`      the last integer equals the answer
`contains_phrase`   the answer appears as whole words, ignoring case
==================  ===========================================================
"""

from __future__ import annotations

import atexit
import importlib
import json
import logging
import math
import os
import re
import select
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

_INT = re.compile(r"-?\d+")


def last_integer(reply: str, answer: str) -> float:
    """1.0 when the last integer in the reply equals the answer ("3 + 4 = 7" -> 7)."""
    found = _INT.findall(reply.replace(",", ""))
    return float(bool(found) and int(found[-1]) == int(answer))


def contains_phrase(reply: str, answer: str) -> float:
    """1.0 when the answer appears in the reply as whole words, ignoring case."""
    pattern = r"(?<![A-Za-z])" + re.escape(answer.lower()) + r"(?![A-Za-z])"
    return float(re.search(pattern, reply.lower()) is not None)


def exact(reply: str, answer: str) -> float:
    """1.0 when reply and answer are equal after `str.strip()` and `str.casefold()`."""
    return float(reply.strip().casefold() == answer.strip().casefold())


def regex(reply: str, answer: str) -> float:
    """1.0 when the answer, a Python `re` pattern, matches somewhere in the reply.

    `re.search(answer, reply)` with no flags: anchor with `^`/`$` or `\\A`/`\\Z` to match the
    whole reply, and use inline flags for the rest, e.g. `(?i)` to ignore case, `(?s)` for
    `.` to match newlines, `(?m)` for `^`/`$` per line. An invalid pattern raises `re.error`
    (`check_answer` reports it before a run).
    """
    return float(re.search(answer, reply) is not None)


# --- \boxed{...} ---------------------------------------------------------------------------

# `\{` and `\}` are literal braces in LaTeX (sets): matched first so they never nest.
_BOX_TOKENS = re.compile(r"\\[{}]|\\(?:boxed|fbox|framebox)\s*\{|[{}]")


def _boxes(text: str) -> list[tuple[int, str]]:
    """(where the box starts, its content) for every complete box, in text order."""
    stack: list[tuple[bool, int, int]] = []  # (is a box, where it starts, where content starts)
    found: list[tuple[int, str]] = []
    for m in _BOX_TOKENS.finditer(text):
        token = m.group()
        if token in ("\\{", "\\}"):
            continue
        if token == "}":
            if stack:
                is_box, start, content_start = stack.pop()
                if is_box:
                    found.append((start, text[content_start : m.start()]))
        else:
            stack.append((token != "{", m.start(), m.end()))
    return sorted(found)


def boxed_contents(text: str) -> list[str]:
    """The contents of every complete `\\boxed{}`/`\\fbox{}`/`\\framebox{}`, in text order.

    Braces nest (`\\boxed{\\frac{1}{2}}` -> `\\frac{1}{2}`); a box inside a box yields both,
    outer first. Unclosed boxes (a truncated reply) are ignored. One pass, linear in the text.
    """
    return [content for _, content in _boxes(text)]


def last_boxed(text: str) -> str | None:
    """The content of the last box whose content is not blank, or None when there is none."""
    for content in reversed(boxed_contents(text)):
        if content.strip():
            return content
    return None


# --- numbers -------------------------------------------------------------------------------

# A minus sign counts only where it cannot be a hyphen or a subtraction ("10-3" -> 3).
_SIGN = r"(?:(?<![\w)\]}.])[-\u2212])?"
_NUMBER = re.compile(
    _SIGN + r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?"  # 1,234.5 or 1234.5 or 1234
    r"|" + _SIGN + r"\.\d+"  # .5
)
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?!\d)")
_LATEX_WRAPPER = re.compile(
    r"\\(?:text|textbf|textrm|textit|textnormal|mathrm|mathbf|mathit|mbox|operatorname)"
    r"\s*\{([^{}]*)\}"
)
_LATEX_NOISE = re.compile(
    r"\^\s*\{?\s*\\circ\s*\}?|\\%|%|\\[,;:! ]|\\\$|\$|~|\\displaystyle|\\left|\\right"
)


def _unwrap_latex(text: str) -> str:
    """Drop text wrappers (`\\text{70}` -> `70`), spacing, `$`, `%` and degree signs."""
    text = text.replace("{,}", ",")  # LaTeX thousands separator 70{,}000
    previous = None
    while previous != text:
        previous, text = text, _LATEX_WRAPPER.sub(r"\1", text)
    return _LATEX_NOISE.sub("", text)


def _numbers(text: str) -> list[str]:
    """Number tokens in `text` (after `_unwrap_latex`), in order."""
    return _NUMBER.findall(_unwrap_latex(text))


def _to_float(token: str) -> float:
    return float(token.replace(",", "").replace("\u2212", "-"))


def _to_integer(token: str) -> int | None:
    """The integer a number token denotes ("070" -> 70, "70.00" -> 70), else None ("70.5")."""
    token = token.replace(",", "").replace("\u2212", "-")
    whole, _, fraction = token.partition(".")
    if fraction.strip("0"):
        return None
    return int(whole) if whole not in ("", "-") else 0


def final_number(text: str) -> float | None:
    """The final numeric answer in `text`, as `numeric` reads it; None when there is none.

    In order: the first number after the last `####`; else the last number in the last
    non-blank `\\boxed{}`; else the last number in the text. `$`, `%`, LaTeX spacing and
    thousands separators (`1,234`, `1{,}234`) are ignored; a trailing period is not a
    decimal point ("18." -> 18); "-5" is negative but "10-3" reads 3.
    """
    if "####" in text:
        after = _numbers(text.rsplit("####", 1)[1])
        if after:
            return _to_float(after[0])
    boxed = last_boxed(text)
    if boxed is not None:
        inside = _numbers(boxed)
        if inside:
            return _to_float(inside[-1])
    found = _numbers(text)
    return _to_float(found[-1]) if found else None


def numeric(reply: str, answer: str) -> float:
    """1.0 when the reply's final number equals the answer's within a small tolerance.

    Both sides are read by `final_number` (so the answer may be "18", "1,000", "$18.00" or a
    GSM8K solution ending "#### 18"); equal means `math.isclose(rel_tol=1e-6, abs_tol=1e-6)`.
    Raises ValueError when the answer holds no number.
    """
    gold = final_number(answer)
    if gold is None:
        raise ValueError(f"numeric scorer needs a number as the answer, got {answer!r}")
    got = final_number(reply)
    return float(got is not None and math.isclose(got, gold, rel_tol=1e-6, abs_tol=1e-6))


# --- aime ----------------------------------------------------------------------------------

_AIME_INTEGER = re.compile(r"([-+\u2212]?)\s*(\d+)(?:\.0*)?")


def aime_integer(content: str) -> int | None:
    """The integer in a box's content, as `aime` reads it; None when it is not one.

    Text wrappers, `$`, LaTeX spacing, `%` and degree signs are dropped (`\\text{70}` -> 70);
    after an `=` only the right side counts (`n = 70` -> 70); thousands-separated numbers
    are one number (`70,000` -> 70000, also `70{,}000`); otherwise commas separate a list and
    the last item counts (`3, 70` -> 70, the publisher's rule). The item must then be a whole
    integer: leading zeros and an all-zero fraction are fine (`070`, `70.0` -> 70), anything
    else is None (`70.5`, `x`, `\\frac{1}{2}`).
    """
    text = _unwrap_latex(content)
    if "=" in text:
        text = text.rsplit("=", 1)[1]
    text = _THOUSANDS.sub(lambda m: m.group().replace(",", ""), text)
    item = text.split(",")[-1].strip()
    m = _AIME_INTEGER.fullmatch(item)
    if m is None:
        return None
    return -int(m[2]) if m[1] in ("-", "\u2212") else int(m[2])


def aime(reply: str, answer: str) -> float:
    """1.0 when the reply's final answer is the answer's integer (gpt-oss's AIME convention).

    The final answer is the content of the LAST non-blank `\\boxed{}` (or `\\fbox{}`,
    `\\framebox{}`; nested braces handled), read by `aime_integer`: if that content is not an
    integer the score is 0, earlier boxes are not tried. With no box at all, the last number
    in the reply counts, and only if it is a whole number ("The answer is 70." -> 70,
    "**70**" -> 70, "70.5" -> 0). Compared as integers, so `\\boxed{070}` == 70.

    Decided beyond the publisher's code (which reads `\\boxed{70,000}` as "000" and
    `\\boxed{70.0}` as no answer): "70,000" is the number 70000, boxed or not (never credited
    as 70 or as 0; AIME answers are 0-999, so it is simply wrong), and `\\boxed{70.0}` is 70.
    Negative numbers are read (`\\boxed{-5}` -> -5). Raises ValueError when the answer is not
    an integer.
    """
    gold = aime_integer(answer)
    if gold is None:
        raise ValueError(f"aime scorer needs an integer answer, got {answer!r}")
    boxed = last_boxed(reply)
    if boxed is not None:
        got = aime_integer(boxed)
    else:
        found = _numbers(reply)
        got = _to_integer(found[-1]) if found else None
    return float(got == gold)


# --- multiple choice -----------------------------------------------------------------------

# Every \s* is followed by a required token, so a long run of spaces cannot backtrack badly.
_MC_EXPLICIT = re.compile(
    r"(?i:answer)(?:\s+is)?\s*(?:[:\-]\s*)?(?:(?:\*\*|[(\[])\s*)?([A-J])(?![A-Za-z])"
)
_MC_ALONE = re.compile(r"\**[(\[]?([A-J])[)\]]?\.?\**")  # on stripped text
_MC_LOOSE = re.compile(
    r"[(\[]([A-J])[)\]]"  # (C) [C]
    r"|(?<![A-Za-z])([A-J])[.):](?=\s|$|\*)"  # C. C) C:
    r"|\*\*([A-J])\*\*"  # **C**
)


def choice_letter(text: str) -> str | None:
    """The letter A-J a reply chooses, as `multiple_choice` reads it; None when none.

    A reply that is just a letter ("C", "(C)", "C.", "**C**") is that letter. Otherwise the
    explicit forms win: the LAST "Answer: C" / "answer is (C)" / "Answer: **C**" or a
    `\\boxed{C}` (`\\boxed{\\text{C}}`); only when there is none, the LAST loose form "(C)",
    "[C]", "C.", "C)", "C:" or "**C**". Letters are upper-case only, so the word "a" is never
    read as A.
    """
    alone = _MC_ALONE.fullmatch(text.strip())
    if alone:
        return alone[1]
    explicit = [(m.start(1), m[1]) for m in _MC_EXPLICIT.finditer(text)]
    for start, content in _boxes(text):
        letter = _MC_ALONE.fullmatch(_unwrap_latex(content).strip())
        if letter:
            explicit.append((start, letter[1]))
    if explicit:
        return max(explicit)[1]
    loose = [(m.start(), next(g for g in m.groups() if g)) for m in _MC_LOOSE.finditer(text)]
    return max(loose)[1] if loose else None


def multiple_choice(reply: str, answer: str) -> float:
    """1.0 when the letter the reply chooses (see `choice_letter`) is the answer's letter.

    The answer is one letter A-J, optionally as "(C)" or "C." (either case); anything else
    raises ValueError.
    """
    m = _MC_ALONE.fullmatch(answer.strip().upper())
    if m is None:
        raise ValueError(f"multiple_choice scorer needs a letter A-J as the answer, got {answer!r}")
    return float(choice_letter(reply) == m[1])


# --- math (math-verify) --------------------------------------------------------------------

MATH_MAX_REPLY_CHARS = 10_000
"""`math` parses only the reply's last this many characters (where the final answer is)."""
MATH_MAX_ANSWER_CHARS = 1_000
"""A longer `math` answer raises ValueError (it is not a final answer)."""
MATH_TIMEOUT_S = 30.0
"""`math` gives up on one reply after this many seconds and scores it 0."""
MATH_STARTUP_TIMEOUT_S = 120.0
"""How long the `math` worker process may take to start (it imports sympy)."""


def _math_check(reply: str, answer: str) -> bool:
    """math-verify's parse + verify with its SIGALRM timeouts disabled (None): thread-safe."""
    mv = importlib.import_module("math_verify")
    if "$" in answer or "\\boxed" in answer or "\\(" in answer or "\\[" in answer:
        gold = mv.parse(answer, parsing_timeout=None)
    else:  # a bare answer ("\\sqrt{2}") is only read as LaTeX when delimited
        gold = mv.parse(f"${answer}$", parsing_timeout=None) or mv.parse(
            answer, parsing_timeout=None
        )
    if not gold:
        return False
    got = mv.parse(reply, parsing_timeout=None)
    return bool(got) and bool(mv.verify(gold, got, timeout_seconds=None))


def _math_worker_main() -> None:
    """The `math` worker process: one JSON `[reply, answer]` per stdin line, "1"/"0" back."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # "timeouts are disabled"
    importlib.import_module("math_verify")
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            reply, answer = json.loads(line)
            ok = _math_check(reply, answer)
        except Exception:  # a reply math-verify cannot handle scores 0, like its own errors
            ok = False
        print("1" if ok else "0", flush=True)


class _LineWorker:
    """A child process answering one stdin line with one stdout line, each within a bound.

    Started on first use; requests from several threads queue on a lock. A request not
    answered within `timeout_s` kills the child (the next request starts a fresh one) and
    returns None. The child's own code does not depend on the caller's `__main__`, threads or
    signals, so this works from any thread of any program. POSIX only (select on a pipe).
    """

    def __init__(self, argv: list[str], timeout_s: float, startup_timeout_s: float) -> None:
        self.argv = argv
        self.timeout_s = timeout_s
        self.startup_timeout_s = startup_timeout_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        atexit.register(self.close)

    def request(self, line: str) -> str | None:
        """The child's answer to `line` (one line, no newline), or None on timeout."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is not None:
                self._stop()  # it died since the last request: start afresh
            proc = self._proc or self._start()
            assert proc.stdin is not None
            try:
                proc.stdin.write(line.encode("utf-8") + b"\n")
                proc.stdin.flush()
            except BrokenPipeError:
                self._stop()
                raise RuntimeError(f"worker {self.argv[-1]!r} exited") from None
            answer = self._readline(proc, self.timeout_s)
            if answer is None:
                self._stop()
            return answer

    def _start(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[3])  # the folder holding parity/
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self._proc = proc
        if self._readline(proc, self.startup_timeout_s) != "ready":
            self._stop()
            raise RuntimeError(f"worker {self.argv[-1]!r} did not start")
        return proc

    def _readline(self, proc: subprocess.Popen[bytes], timeout_s: float) -> str | None:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
        if not ready:
            return None
        raw = proc.stdout.readline()
        if not raw:
            self._stop()
            raise RuntimeError(f"worker {self.argv[-1]!r} exited")
        return raw.decode("utf-8").rstrip("\n")

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    stream.close()
            self._proc = None

    def close(self) -> None:
        """Stop the child (a later request starts a new one)."""
        with self._lock:
            self._stop()


_MATH_WORKER = _LineWorker(
    [
        sys.executable,
        "-c",
        "from parity.accuracy.suites.scorers import _math_worker_main as m; m()",
    ],
    MATH_TIMEOUT_S,
    MATH_STARTUP_TIMEOUT_S,
)


def math_equivalent(reply: str, answer: str) -> float:
    """1.0 when math-verify finds the reply's final answer equivalent to the answer.

    `math_verify.parse` extracts the answer from the reply (last `\\boxed{}` first, then
    LaTeX, then plain expressions) and `math_verify.verify(gold, parsed)` compares them
    symbolically and numerically (`1/2` == `\\frac{1}{2}` == `0.5`, `(x+1)^2` == `x^2+2x+1`).
    The answer is parsed as LaTeX (wrapped in `$...$` unless it is delimited already).
    math-verify's own reading rules apply: e.g. several boxes may be read as one set answer
    (`x = \\boxed{2} or x = \\boxed{3}` matches `\\{2, 3\\}`).

    Bounds: math-verify's own timeouts use SIGALRM, which fails off the main thread, so they
    are disabled (`parsing_timeout=None`, `timeout_seconds=None`). Instead only the last
    `MATH_MAX_REPLY_CHARS` characters of the reply are parsed, and the check runs in a
    long-lived child process (`python -c ...`, started on first use, about 1-2 s) that is
    killed when one check takes over `MATH_TIMEOUT_S` seconds: that reply scores 0. Safe
    from any thread; concurrent calls queue. (Off POSIX the check runs in the calling thread,
    bounded by the length limit only.) Raises ValueError for an answer longer than
    `MATH_MAX_ANSWER_CHARS`, RuntimeError if the child cannot start or dies.
    """
    if len(answer) > MATH_MAX_ANSWER_CHARS:
        raise ValueError(f"math scorer answer is over {MATH_MAX_ANSWER_CHARS} characters")
    reply = reply[-MATH_MAX_REPLY_CHARS:]
    if os.name != "posix":  # pragma: no cover - no select() on pipes: unbounded, in-thread
        return float(_math_check(reply, answer))
    return float(_MATH_WORKER.request(json.dumps([reply, answer])) == "1")


# --- registry ------------------------------------------------------------------------------

Scorer = Callable[[str, str], float]

SCORERS: dict[str, Scorer] = {
    "aime": aime,
    "numeric": numeric,
    "math": math_equivalent,
    "exact": exact,
    "multiple_choice": multiple_choice,
    "regex": regex,
    "last_integer": last_integer,
    "contains_phrase": contains_phrase,
}
"""Scorers by the name suite files use."""


def check_answer(scorer: str, answer: str) -> str | None:
    """Why `answer` cannot be graded by the scorer named `scorer`, or None when it can.

    Catches unknown scorer names, answers the scorer cannot read (non-integer for `aime` and
    `last_integer`, no number for `numeric`, not a letter for `multiple_choice`, too long for
    `math`) and invalid `regex` patterns, without grading anything.
    """
    if scorer not in SCORERS:
        return f"unknown scorer {scorer!r}; known: {', '.join(sorted(SCORERS))}"
    try:
        if scorer == "regex":
            re.compile(answer)
        elif scorer == "math":
            if len(answer) > MATH_MAX_ANSWER_CHARS:
                raise ValueError(f"math scorer answer is over {MATH_MAX_ANSWER_CHARS} characters")
            if not answer.strip():
                raise ValueError("math scorer needs a non-empty answer")
        elif scorer == "last_integer" and not re.fullmatch(r"\s*-?\d+\s*", answer):
            raise ValueError(f"last_integer scorer needs an integer answer, got {answer!r}")
        elif scorer in ("aime", "numeric", "multiple_choice"):
            SCORERS[scorer]("", answer)
    except re.error as exc:
        return f"answer is not a valid regex for scorer 'regex': {exc}"
    except ValueError as exc:
        return str(exc).replace("\n", " ")
    return None
