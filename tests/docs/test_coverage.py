"""The reference pages list what the code has: every command and option on the CLI page,
every conformance check, fault, fleet variant, built-in suite and scorer on its page. A
new one added to the code without its line in the docs fails here."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main

from parity.cli.main import app
from tests.docs.markdown_blocks import DOCS, section


def _page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _leaf_commands() -> list[tuple[str, Any]]:
    """("parity local up", click command) for every command that runs something."""
    found: list[tuple[str, Any]] = []

    def walk(command: Any, path: str, ctx: Any) -> None:
        if not hasattr(command, "commands"):
            found.append((path, command))
            return
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            walk(sub, f"{path} {name}", sub.context_class(sub, info_name=name, parent=ctx))

    root: Any = typer.main.get_command(app)
    walk(root, "parity", root.context_class(root, info_name="parity"))
    return found


COMMANDS = _leaf_commands()


def test_the_cli_has_its_commands() -> None:
    names = {path for path, _ in COMMANDS}
    assert {"parity run", "parity equiv test", "parity local up", "parity demo"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_cli_page_documents_every_command_and_option(path: str, command: Any) -> None:
    text = _page("cli.md")
    level = "###" if path.count(" ") > 1 else "##"
    heading = f"{level} {path}"
    assert heading in text.splitlines(), f"docs/cli.md has no heading '{heading}'"
    body = section(text, heading)
    for param in command.params:
        if param.param_type_name != "option" or param.opts == ["--help"]:
            continue
        option = max(param.opts, key=len)
        assert f"`{option}" in body, f"docs/cli.md, {path}: option {option} is not documented"


def test_conformance_page_lists_every_check() -> None:
    from parity.conformance.registry import CHECKS, RUN_CHECKS

    table = section(_page("conformance.md"), "## The checks")
    for check in CHECKS:
        assert f"| `{check.id}`" in table, f"docs/conformance.md: no row for {check.id}"
        if not check.required:
            assert f"`{check.id}` (optional)" in table, f"{check.id} is optional"
    intro = _page("conformance.md")
    assert all(f"`{check_id}`" in intro for check_id in RUN_CHECKS)
    assert f"runs all {len(CHECKS)}" in intro


def test_findings_page_lists_every_fault() -> None:
    from parity.local.faults import FAULTS

    text = _page("findings.md")
    for fault in FAULTS:
        assert f"| `{fault.name}`" in text, f"docs/findings.md: no row for fault {fault.name}"


def test_fleet_page_lists_every_variant() -> None:
    from parity.local.variants import VARIANTS

    text = _page("fleet.md")
    for name in VARIANTS:
        assert f"| `{name}` |" in text, f"docs/fleet.md: no row for variant {name}"


def test_accuracy_page_names_every_suite_and_scorer() -> None:
    from parity.accuracy.suites import suite_names
    from parity.accuracy.suites.scorers import SCORERS

    text = _page("accuracy.md")
    for name in suite_names():
        assert f"- `{name}`" in text, f"docs/accuracy.md: suite {name} is not described"
    for name in SCORERS:
        assert f"`{name}`" in text, f"docs/accuracy.md: scorer {name} is not named"


def _tree_entries() -> set[str]:
    """The paths the source tree on the architecture page lists, relative to src/parity."""
    from tests.docs.markdown_blocks import blocks

    [tree] = [b for b in blocks(DOCS / "architecture.md") if b.text.startswith("src/parity/\n")]
    entries: set[str] = set()
    stack: list[str] = []
    for line in tree.text.splitlines()[1:]:
        name_at = next(i for i, ch in enumerate(line) if ch not in "│├└─ ")
        depth = name_at // 4 - 1
        name = line[name_at:].split()[0]
        stack[depth:] = [name.rstrip("/")]
        entries.add("/".join(stack) + ("/" if name.endswith("/") else ""))
    return entries


def test_architecture_tree_is_the_source_tree() -> None:
    from tests.docs.markdown_blocks import ROOT

    source = ROOT / "src" / "parity"
    modules = {
        str(path.relative_to(source))
        for path in source.rglob("*.py")
        if not (path.name == "__init__.py" and path.parent != source)
    }
    listed = _tree_entries()
    missing = sorted(modules - listed)
    assert not missing, f"docs/architecture.md's source tree lacks {missing}"
    for entry in listed:
        assert (source / entry).exists(), f"docs/architecture.md lists {entry}: not in src/parity"
