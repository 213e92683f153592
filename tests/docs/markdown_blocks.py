"""What the documentation tests read: the Markdown files, their fenced code blocks, and the
shell commands inside them. Parsing only; the tests are in `test_examples.py`."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^```([\w+-]*)\s*$")
_SNIPPET = re.compile(r'^--8<--\s+"([^"]+)"\s*$')
OPERATORS = {"&&", "||", ";", "|", "&"}
"""Shell control operators: they separate one command from the next."""


def markdown_files() -> list[Path]:
    """Every page of the site, and the README."""
    return [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, its text (snippets included), where it starts."""

    path: Path
    line: int
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _include_snippets(text: str) -> str:
    """`--8<-- "path"` lines replaced by the file (what pymdownx.snippets does at build)."""
    out = []
    for line in text.splitlines():
        match = _SNIPPET.match(line.strip())
        out.append((ROOT / match[1]).read_text(encoding="utf-8") if match else line + "\n")
    return "".join(out)


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order (fences at the start of a line)."""
    found: list[Block] = []
    lang: str | None = None
    start = 0
    body: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = _FENCE.match(line.strip())
        if lang is None:
            if match:
                lang, start, body = match[1] or "", number, []
        elif match and not match[1]:
            found.append(Block(path, start, lang, _include_snippets("\n".join(body))))
            lang = None
        else:
            body.append(line)
    assert lang is None, f"{path}:{start}: unclosed code block"
    return found


def all_blocks(*langs: str) -> list[Block]:
    """Every block in the given languages, over all the documentation files."""
    return [b for path in markdown_files() for b in blocks(path) if b.lang in langs]


def shell_lines(block: Block) -> list[str]:
    """The command lines of a shell block: `$ ` lines of a console block, every line of a
    bash/sh block; backslash continuations joined."""
    return [line for _, line in numbered_shell_lines(block)]


def numbered_shell_lines(block: Block) -> list[tuple[int, str]]:
    """`shell_lines` with the file line number each command starts on."""
    lines: list[tuple[int, str]] = []
    pending, first = "", 0
    for offset, raw in enumerate(block.text.splitlines(), 1):
        line = raw.rstrip()
        if not pending:
            first = block.line + offset
            if block.lang == "console":
                if not line.startswith("$ "):
                    continue  # output
                line = line[2:]
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.strip():
            lines.append((first, line.strip()))
    return lines


def commands(line: str) -> list[list[str]]:
    """The simple commands of a shell line, as token lists (comments dropped); a redirection
    stays a token of its own (`<`, `>`, `>=`...), so an unquoted `ttft<=1s` shows up."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    out: list[list[str]] = [[]]
    for token in lexer:
        if token in OPERATORS:
            out.append([])
        else:
            out[-1].append(token)
    return [tokens for tokens in out if tokens]


def parity_commands() -> list[tuple[str, list[str]]]:
    """(where, argv without `parity`) for every `parity ...` command in a shell block."""
    found = []
    for block in all_blocks("console", "bash", "sh", "shell"):
        for number, line in numbered_shell_lines(block):
            for tokens in commands(line):
                if tokens[0] == "parity":
                    where = f"{block.path.relative_to(ROOT)}:{number}"
                    found.append((f"{where}: {' '.join(tokens)}", tokens[1:]))
    return found


def section(text: str, heading: str) -> str:
    """The text under a Markdown heading line, up to the next heading of any level."""
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if re.match(r"#{1,6} ", lines[i])), len(lines))
    return "\n".join(lines[start:end])
