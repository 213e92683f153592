"""Every example in the documentation (docs/*.md and the README) is run or checked here:

- a ```toml block with `[[provider]]` is loaded with parity's own loader; a first line
  `# error: MESSAGE` means the loader must refuse it with that message;
- every `parity ...` command in a ```console (`$ ` lines), ```bash or ```sh block is resolved
  against the real CLI, without running it: an unknown command or option, a missing or an
  extra argument, or a bad value fails;
- ```python blocks are executed (from the repository root); ```jsonl blocks load as suites;
- every cited `src/parity/...`, `tests/...`, `benchmarks/...`, `examples/...` path exists,
  and every dotted `parity.x.y` name imports.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main

from parity.cli.main import app
from parity.core.config import load_providers
from parity.core.errors import ConfigError
from tests.docs.markdown_blocks import (
    ROOT,
    Block,
    all_blocks,
    parity_commands,
    shell_lines,
)

TOML = all_blocks("toml")
PROVIDER_FILES = [b for b in TOML if "[[provider]]" in b.text]
COMMANDS = parity_commands()
PYTHON = all_blocks("python")
JSONL = all_blocks("jsonl")
_ERROR = re.compile(r"^# error: (.+)$")


def _ids(blocks: list[Block]) -> list[str]:
    return [b.where for b in blocks]


def test_the_docs_have_examples_of_each_kind() -> None:
    assert len(PROVIDER_FILES) >= 3
    assert len(COMMANDS) >= 40
    assert PYTHON and JSONL


@pytest.mark.parametrize("block", PROVIDER_FILES, ids=_ids(PROVIDER_FILES))
def test_providers_file_loads(block: Block, tmp_path: Path) -> None:
    path = tmp_path / "providers.toml"
    path.write_text(block.text, encoding="utf-8")
    expected = _ERROR.match(block.text.splitlines()[0])
    if expected:
        with pytest.raises(ConfigError) as refused:
            load_providers(path)
        assert str(refused.value) == f"{path}: {expected[1]}"
    else:
        providers = load_providers(path)
        assert providers.providers


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.toml")), ids=str)
def test_example_providers_files_load(path: Path) -> None:
    assert load_providers(path).reference() is not None


def _resolve(argv: list[str]) -> None:
    """Parse `parity ARGV` with the real command tree, as the CLI would, without running it."""
    command: Any = typer.main.get_command(app)
    ctx = command.context_class(command, info_name="parity")
    args, path = list(argv), ["parity"]
    while hasattr(command, "commands"):  # a group: the next word names a subcommand
        assert args and not args[0].startswith("-"), f"{' '.join(path)}: no subcommand given"
        name = args.pop(0)
        sub = command.get_command(ctx, name)
        known = ", ".join(command.list_commands(ctx))
        assert sub is not None, f"{' '.join(path)} has no command {name!r} (known: {known})"
        path.append(name)
        command, ctx = sub, sub.context_class(sub, info_name=name, parent=ctx)
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            with command.make_context(path[-1], args, parent=ctx.parent, resilient_parsing=False):
                pass  # closing the context undoes what option callbacks set (--json -)
        except typer.Exit as done:  # --help: parsed, printed, done
            assert done.exit_code == 0


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_parity_command_is_valid(where: str, argv: list[str]) -> None:
    redirections = [t for t in argv if set(t) <= set("<>&=|") and set(t) & set("<>")]
    assert not redirections, f"unquoted {redirections}: the shell would redirect ({where})"
    _resolve(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["no-such-command"],
        ["run", "--no-such-option"],
        ["diff", "only-one-run"],
        ["runs", "extra-argument"],
        ["local"],
        ["eval", "p.toml", "--repeats", "many"],
    ],
    ids=str,
)
def test_an_invalid_command_is_caught(argv: list[str]) -> None:
    with pytest.raises(Exception):  # noqa: B017 - click's usage errors, or our assertion
        _resolve(argv)


@pytest.mark.parametrize("block", PYTHON, ids=_ids(PYTHON))
def test_python_block_runs(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code = compile(block.text, block.where, "exec")
    with contextlib.redirect_stdout(io.StringIO()):
        exec(code, {"__name__": "__docs__"})


@pytest.mark.parametrize("block", JSONL, ids=_ids(JSONL))
def test_jsonl_block_is_a_user_suite(block: Block, tmp_path: Path) -> None:
    from parity.accuracy.suites.user import load_user_suite

    path = tmp_path / "suite.jsonl"
    path.write_text(block.text, encoding="utf-8")
    suite = load_user_suite(path)
    assert suite.problems
    for problem in suite.problems:
        assert suite.grade(problem, str(problem.answer)) == 1.0


def test_console_blocks_mark_their_commands() -> None:
    # A console block without `$ ` lines would check nothing: output belongs in ```text.
    for block in all_blocks("console"):
        assert shell_lines(block), f"{block.where}: a console block with no `$ ` command"
