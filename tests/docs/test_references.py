"""What the documentation points at exists: cited files, dotted module names, the README's
links, the pages in the site's navigation, and the README's test command is `.ci/run`'s."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from tests.docs.markdown_blocks import DOCS, ROOT, markdown_files

TEXTS = {path: path.read_text(encoding="utf-8") for path in markdown_files()}
_PATH = re.compile(r"(?<![\w/.~$<-])((?:src/parity|tests|benchmarks|examples|docs)/[\w./*-]*)")
_DOTTED = re.compile(r"(?<![\w/.-])parity(?:\.[A-Za-z_]\w*)+")
_NOT_MODULES = {"db", "toml", "json", "html", "csv", "xml", "md", "parity", "log"}
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _cited(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    found = {
        (match.group(0).rstrip(".,:;"), f"{path.relative_to(ROOT)}")
        for path, text in TEXTS.items()
        for match in pattern.finditer(text)
    }
    return sorted(found)


PATHS = _cited(_PATH)
NAMES = [(n, w) for n, w in _cited(_DOTTED) if n.split(".", 1)[1] not in _NOT_MODULES]


def test_paths_and_names_are_found() -> None:
    cited = {p for p, _ in PATHS}
    assert {"src/parity/core/config.py", "tests/integration/", "examples/providers.toml"} <= cited
    assert len(NAMES) >= 5


@pytest.mark.parametrize(("cited", "where"), PATHS, ids=[f"{w}:{p}" for p, w in PATHS])
def test_cited_path_exists(cited: str, where: str) -> None:
    if "*" in cited:
        assert list(ROOT.glob(cited)), f"{where}: nothing matches {cited}"
    else:
        assert (ROOT / cited).exists(), f"{where} cites {cited}, which does not exist"


@pytest.mark.parametrize(("name", "where"), NAMES, ids=[f"{w}:{n}" for n, w in NAMES])
def test_dotted_name_imports(name: str, where: str) -> None:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: object = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and not exc.name.startswith("parity"):
                pytest.skip(f"{module_name} needs {exc.name}, not installed")
            continue
        for attribute in parts[cut:]:
            assert hasattr(obj, attribute), f"{where}: {name}: no {attribute} in {module_name}"
            obj = getattr(obj, attribute)
        return
    pytest.fail(f"{where}: {name} is not a module of parity")


def _slug(heading: str) -> str:
    from markdown.extensions.toc import slugify

    return str(slugify(heading, "-"))


def _anchors(page: Path) -> set[str]:
    text, inside = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside:
            text.append(line)
    headings = [m[1] for line in text if (m := re.match(r"#{1,6} (.+)", line))]
    return {_slug(re.sub(r"[`*]", "", h)) for h in headings}


def test_readme_links_resolve() -> None:
    pytest.importorskip("markdown")
    readme = TEXTS[ROOT / "README.md"]
    links = [link for link in _LINK.findall(readme) if "://" not in link]
    assert len(links) >= 10
    for link in links:
        target, _, anchor = link.partition("#")
        page = ROOT / target
        assert page.exists(), f"README links to {target}, which does not exist"
        if anchor:
            assert anchor in _anchors(page), f"README links to {link}: no such heading"


def test_every_page_is_in_the_nav() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["theme"]["name"] == "material"

    def pages(nav: object) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, list):
            return [p for item in nav for p in pages(item)]
        if isinstance(nav, dict):
            return [p for value in nav.values() for p in pages(value)]
        return []

    in_nav = pages(config["nav"])
    assert len(in_nav) == len(set(in_nav))
    assert sorted(in_nav) == sorted(p.name for p in DOCS.glob("*.md"))


def _ci_commands() -> tuple[str, list[str]]:
    """`.ci/run`'s CMAKE_ARGS line and the commands it runs after it (comments dropped)."""
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    cmake = next(i for i, line in enumerate(lines) if line.startswith("export CMAKE_ARGS="))
    return lines[cmake], lines[cmake + 1 :]


@pytest.mark.parametrize("page", ["README.md", "docs/quickstart.md"])
def test_the_test_command_is_what_ci_runs(page: str) -> None:
    cmake, after = _ci_commands()
    assert after[0].startswith("pip install -e '.[") and after[-1] == "pytest"
    assert "mkdocs build --strict" in " ".join(after)
    code = [line.split("  #")[0].strip() for line in TEXTS[ROOT / page].splitlines()]
    assert cmake in code, f"{page} does not export {cmake}"
    assert " && ".join(after) in code, f"{page}'s command 2 is not: {' && '.join(after)}"
