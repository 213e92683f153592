"""The fault matrix: proof that every conformance check catches a real fault.

For each upstream (the scripted reasoning model, the real local llama.cpp server, and, when
named, a real local vLLM server) parity serves three kinds of provider: the upstream itself
(the reference), the upstream through a fault-free proxy (A/A: a second reference, which
must pass what the reference passes), and the upstream through one fault-injecting proxy
per fault in `MATRIX_FAULTS`.

A check *applies* to an upstream when the reference passes it (or, for checks whose bar
is the reference, when it is n/a there) and the A/A twin passes it. Fault providers are
judged on the applicable checks only (on the llama.cpp upstream that also keeps the run
short). The matrix *holds* when every check applies to some upstream, the twin raises no
false alarm, and every check is caught (fails or errors) by at least one fault where it
applies. Faults no check catches are listed; they are not a failure of the matrix (a
slow first token is a speed finding for `parity bench`, not a conformance one).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from parity.conformance.registry import selected_checks
from parity.conformance.run import KIND, conform_options
from parity.core.analysis import ProviderResult, analyse_run
from parity.core.config import Provider, ProvidersFile, load_providers
from parity.core.dburl import Db
from parity.core.errors import ConfigError
from parity.core.lifecycle import open_run
from parity.core.plan import RunOptions
from parity.core.runner import execute
from parity.core.store import Store
from parity.local.faults import parse_faults
from parity.local.proxy import create_proxy_app
from parity.local.scripted_model import CONTEXT_WINDOW, MODEL_ID, create_app
from parity.local.serve import BackgroundServer

MATRIX_FAULTS: tuple[str, ...] = (
    "drop=tools",
    "drop=tool_choice",
    "tool-args-invalid",
    "tool-wrong-name",
    "no-tool-messages",
    "drop=reasoning_effort",
    "strip-reasoning",
    "drop=max_tokens",
    "drop=stop",
    "drop=temperature",
    "drop=top_p",
    "drop=seed",
    "drop=n",
    "drop=logprobs",
    "drop=response_format",
    "break-sse",
    "drop-usage",
    "inflate-usage=20",
    "inject-system",
    "truncate-prompt=300",
    "accept-invalid",
    "errors-as-500",
    "http-429=0.5",
    "http-500=0.5",
    "delay-first-token=200",
)
UPSTREAMS = ("scripted", "llama", "vllm")
BOTH = ("scripted", "llama")
"""What `--upstream both` runs: vLLM is run only when named (it needs the `vllm` extra)."""
REFERENCE, TWIN = "reference", "a-a"
LLAMA_CONTEXT = 1024
"""The window the llama.cpp rows claim: the server serves 4096, but a 90% document of 1024
keeps each fault row to seconds of prompt processing on two CPU cores."""


@dataclass(frozen=True)
class Upstream:
    """A server the matrix puts faults in front of."""

    name: str
    base_url: str
    model: str
    context_window: int
    max_concurrency: int
    fault_batch: int | None = None
    """Fault providers run at once; None: one at a time when `max_concurrency` is 1, else
    all together."""


@dataclass
class MatrixResult:
    """Statuses by (upstream, column, check id); a column is REFERENCE, TWIN or a fault."""

    upstreams: list[str]
    checks: list[str]
    faults: list[str]
    status: dict[tuple[str, str, str], str] = field(default_factory=dict)
    figure: dict[tuple[str, str, str], str] = field(default_factory=dict)
    applicable: dict[str, set[str]] = field(default_factory=dict)

    def caught(self, check: str, fault: str) -> list[str]:
        """The upstreams on which `fault` made `check` fail (or error) where it applies."""
        return [
            u
            for u in self.upstreams
            if check in self.applicable.get(u, set())
            and self.status.get((u, fault, check)) in ("fail", "error")
        ]

    def false_alarms(self) -> list[tuple[str, str]]:
        """(upstream, check) where the reference passes and its A/A twin does not."""
        return [
            (u, c)
            for u in self.upstreams
            for c in self.checks
            if self.status.get((u, REFERENCE, c)) == "pass"
            and self.status.get((u, TWIN, c)) != "pass"
        ]

    def problems(self) -> list[str]:
        """Why the matrix does not hold (empty: it holds)."""
        out = [
            f"{c}: the reference passes on {u} but its A/A twin does not"
            for u, c in self.false_alarms()
        ]
        for c in self.checks:
            if not any(c in self.applicable.get(u, set()) for u in self.upstreams):
                out.append(f"{c}: applies to no upstream (the reference does not pass it)")
            elif not any(self.caught(c, f) for f in self.faults):
                out.append(f"{c}: no fault makes it fail (an empty row)")
        return out

    @property
    def holds(self) -> bool:
        """True when the matrix holds (see the module docstring)."""
        return not self.problems()

    def uncaught_faults(self) -> list[str]:
        """Faults that no check catches on any upstream."""
        return [f for f in self.faults if not any(self.caught(c, f) for c in self.checks)]


def run_matrix(
    upstream: str,
    selection: Sequence[str] | None = None,
    faults: Sequence[str] = MATRIX_FAULTS,
    db: Db | None = None,
    console: Console | None = None,
) -> MatrixResult:
    """Start the upstreams ("scripted", "llama" or "both") and one proxy per fault, run the
    selected checks (default all), and return the matrix. Runs are stored in `db` (default:
    a temporary file) as conform runs; servers are stopped before returning."""
    names = list(BOTH) if upstream == "both" else [upstream]
    if any(n not in UPSTREAMS for n in names):
        raise ConfigError(f"--upstream {upstream!r}: choose scripted, llama, vllm or both")
    for spec in faults:
        parse_faults(spec)  # a bad spec fails before any server starts
    console = console or Console(stderr=True)
    checks = [c.id for c in selected_checks(tuple(selection) if selection else ("all",))]
    result = MatrixResult(names, checks, list(faults))
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="parity-matrix-")))
        db = db or tmp / "matrix.db"
        for name in names:
            up = stack.enter_context(_start(name, tmp))
            console.print(f"matrix: {name} upstream at {up.base_url}", highlight=False)
            _run_upstream(up, checks, list(faults), db, result, console)
    return result


@contextlib.contextmanager
def _start(name: str, tmp: Path) -> Iterator[Upstream]:
    if name == "scripted":
        with BackgroundServer(create_app()) as server:
            yield Upstream(name, server.url + "/v1", MODEL_ID, CONTEXT_WINDOW, 8)
        return
    from parity.local.fleet import fleet_down, fleet_up

    state = tmp / "fleet"
    variant = "reference-vllm" if name == "vllm" else "reference"
    providers = load_providers(fleet_up(state, [variant], base_port=_free_port(), threads=2))
    try:
        ref = providers.providers[0]
        if name == "vllm":
            # vLLM batches requests: 5 fault providers at a time, 2 requests each, keeps its
            # one core busy without a request waiting past its timeout.
            yield Upstream(name, ref.base_url, ref.model, LLAMA_CONTEXT, 2, fault_batch=5)
        else:
            yield Upstream(name, ref.base_url, ref.model, LLAMA_CONTEXT, 1)
    finally:
        fleet_down(state)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _slug(spec: str) -> str:
    return spec.replace("=", "-").replace("_", "-")


def _provider(up: Upstream, name: str, base_url: str, reference: bool = False) -> Provider:
    return Provider(
        name=name,
        base_url=base_url,
        model=up.model,
        context_window=up.context_window,
        max_concurrency=up.max_concurrency,
        reference=reference,
        timeout_s=60,
    )


def _run_upstream(
    up: Upstream,
    checks: list[str],
    faults: list[str],
    db: Db,
    result: MatrixResult,
    console: Console,
) -> None:
    with contextlib.ExitStack() as stack:
        proxies = {
            spec: stack.enter_context(
                BackgroundServer(create_proxy_app(up.base_url, parse_faults(spec)))
            )
            for spec in ["", *faults]
        }
        reference = _provider(up, REFERENCE, up.base_url, reference=True)
        twin = _provider(up, TWIN, proxies[""].url + "/v1")
        first_run, first = _run(db, [reference, twin], conform_options(checks, 1), None)
        for r in first:
            _record(result, up.name, REFERENCE if r.reference else TWIN, r)
        applicable = {
            c
            for c in checks
            if result.status.get((up.name, TWIN, c)) == "pass"
            and result.status.get((up.name, REFERENCE, c)) in ("pass", "n/a")
        }
        result.applicable[up.name] = applicable
        console.print(
            f"matrix: {len(applicable)}/{len(checks)} checks apply to {up.name}; "
            f"running {len(faults)} faults",
            highlight=False,
        )
        if not applicable:
            return
        fault_providers = [_provider(up, _slug(f), proxies[f].url + "/v1") for f in faults]
        options = conform_options(sorted(applicable), 1)
        # An upstream that serves one request at a time (llama.cpp) gets one fault at a time:
        # 25 providers queued on one server would time out, and a timeout is no finding.
        batches = [[p] for p in fault_providers] if up.max_concurrency == 1 else [fault_providers]
        if up.fault_batch is not None:
            size = up.fault_batch
            batches = [fault_providers[i : i + size] for i in range(0, len(fault_providers), size)]
        by_slug = {_slug(f): f for f in faults}
        for batch in batches:
            _, second = _run(db, [reference, *batch], options, first_run)
            for r in second:
                if not r.reference:
                    _record(result, up.name, by_slug[r.name], r)


def _run(
    db: Db, providers: list[Provider], options: RunOptions, reference_from: str | None
) -> tuple[str, list[ProviderResult]]:
    """One conform run; the reference's exchanges are copied from run `reference_from` (so
    the reference is asked once per upstream)."""
    with open_run(db, KIND, options.model_dump(), resumable=False) as run:
        if reference_from is not None:
            for item in list(run.store.exchanges(reference_from, REFERENCE)):
                run.store.add_exchange(run.run_id, REFERENCE, item.probe, item.key, item.exchange)
        asyncio.run(execute(run.store, run.run_id, ProvidersFile(provider=providers), options))
    with Store(db) as store:
        return run.run_id, analyse_run(store, run.run_id, options)


def _record(result: MatrixResult, upstream: str, column: str, r: ProviderResult) -> None:
    for row in r.conformance:
        result.status[(upstream, column, row["id"])] = row["status"]
        result.figure[(upstream, column, row["id"])] = row["figure"]


def _cell(result: MatrixResult, check: str, column: str) -> str:
    """`✗` + upstream initials where the column makes the check fail, `·` where it runs and
    passes, blank where it does not apply."""
    tag = (lambda u: u[0].upper()) if len(result.upstreams) > 1 else (lambda u: "")
    if column in (REFERENCE, TWIN):
        marks = []
        for u in result.upstreams:
            status = result.status.get((u, column, check))
            if status is not None and status != "n/a":
                marks.append(("✓" if status == "pass" else "✗") + tag(u))
        return " ".join(marks) or "n/a"
    caught = result.caught(check, column)
    if caught:
        return "✗" + "".join(tag(u) for u in caught)
    ran = any(check in result.applicable.get(u, set()) for u in result.upstreams)
    return "·" if ran else ""


def print_matrix(result: MatrixResult, console: Console) -> None:
    """The check x fault table, a legend, and whether the matrix holds."""
    table = Table(
        title="fault matrix: check x fault", title_justify="left", padding=(0, 0), box=None
    )
    width = max(len(c) for c in result.checks)
    table.add_column("check", no_wrap=True, min_width=width + 1)
    table.add_column("ref", no_wrap=True, min_width=3 * len(result.upstreams) + 1)
    table.add_column("A/A", no_wrap=True, min_width=3 * len(result.upstreams) + 1)
    for i, _ in enumerate(result.faults, 1):
        table.add_column(
            f"{i}", justify="center", no_wrap=True, min_width=2 + len(result.upstreams)
        )
    for check in result.checks:
        table.add_row(
            check,
            _cell(result, check, REFERENCE),
            _cell(result, check, TWIN),
            *(_cell(result, check, f) for f in result.faults),
        )
    console.print(table)
    legend = "  ".join(f"{i} {f}" for i, f in enumerate(result.faults, 1))
    console.print(f"faults: {legend}", highlight=False)
    console.print(
        "✗: the check fails under that fault (S/L/V: on the scripted/llama/vllm upstream); "
        "·: runs and passes; blank: does not apply; ✓/✗ in ref and A/A: pass/fail there",
        highlight=False,
    )
    uncaught = result.uncaught_faults()
    if uncaught:
        console.print(f"caught by no check: {', '.join(uncaught)}", highlight=False)
    problems = result.problems()
    if problems:
        console.print("[red]the matrix does not hold:[/]")
        for line in problems:
            console.print(f"  {line}", highlight=False)
    else:
        console.print("[green]the matrix holds[/]: every check passes A/A and is caught by a fault")


def matrix_markdown(result: MatrixResult) -> str:
    """The matrix as a Markdown table (faults as columns, named in full)."""
    head = ["check", "ref", "A/A", *(f"`{f}`" for f in result.faults)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for check in result.checks:
        cells = [f"`{check}`", _cell(result, check, REFERENCE), _cell(result, check, TWIN)]
        cells += [_cell(result, check, f) for f in result.faults]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
