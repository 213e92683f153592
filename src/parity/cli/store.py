"""`parity store`: migrate, merge, export, import and prune a store (SQLite or PostgreSQL).

The work is in `parity.core.transfer` and `parity.core.migrations`; this module parses the
options and prints one line per thing done. Nothing here sends a request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from parity.cli.common import DEFAULT_DB, DbOption, out
from parity.core.dburl import DbRef, parse_db
from parity.core.errors import ConfigError
from parity.core.schema import SCHEMA_VERSION

store_app = typer.Typer(
    help="Look after a store: migrate it to this parity's schema, merge one into another, "
    "export and import a portable dump, prune old runs. Sends nothing.",
    no_args_is_help=True,
)

StoreArg = Annotated[
    DbRef, typer.Argument(parser=parse_db, metavar="STORE", help="A path or postgresql:// URL.")
]


def _existing(ref: DbRef) -> DbRef:
    if not ref.exists():
        raise ConfigError(f"{ref}: no such store")
    return ref


def _summary(report: object) -> str:
    from parity.core.transfer import TransferReport

    assert isinstance(report, TransferReport)
    rows = ", ".join(f"{n} {t}" for t, n in sorted(report.rows.items())) or "no rows"
    text = (
        f"{len(report.added)} runs added, {len(report.same)} already there, "
        f"{len(report.united)} in both with different content; rows added: {rows}"
    )
    for run_id, (added, differ) in sorted(report.united.items()):
        text += (
            f"\n  run {run_id} is in both with different content: {added} rows added, "
            f"{differ} rows differ (the target's kept)"
        )
    return text


@store_app.command("migrate")
def migrate_command(db: DbOption = DEFAULT_DB) -> None:
    """Bring the store to this parity's schema version (idempotent; SQLite stores also
    migrate on open, a PostgreSQL store only with this command)."""
    from parity.core.store import Store

    with Store(_existing(db), migrate=True) as store:
        found = store.found_version
    if found < SCHEMA_VERSION:
        out.print(f"{db}: migrated from schema version {found} to {SCHEMA_VERSION}")
    else:
        out.print(f"{db}: at schema version {SCHEMA_VERSION}, nothing to do")


@store_app.command("merge")
def merge_command(source: StoreArg, target: StoreArg) -> None:
    """Copy every run of SOURCE (and its cache) into TARGET (created if missing), each run
    whole, skipping what TARGET has: merging twice adds nothing. A run id in both with
    different content is united: the rows TARGET lacks are added, TARGET's kept where both
    differ (counted)."""
    from parity.core.store import Store
    from parity.core.transfer import merge

    with Store(_existing(source)) as a, Store(target, migrate=True) as b:
        report = merge(a, b)
    out.print(f"merged {source} into {target}: {_summary(report)}", highlight=False)


@store_app.command("export")
def export_command(
    file: Annotated[Path, typer.Argument(help="The dump (JSON lines; gzip if it ends .gz).")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Write every run, with its rows, and the cache to FILE: a portable dump any parity
    store (SQLite or PostgreSQL) imports."""
    from parity.core.store import Store
    from parity.core.transfer import export

    with Store(_existing(db)) as store:
        counts = export(store, file)
    rows = ", ".join(f"{n} {t}" for t, n in sorted(counts.items())) or "nothing"
    out.print(f"exported {db} to {file}: {rows}", highlight=False)


@store_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="A dump written by parity store export.")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Add the runs of dump FILE to the store (created if missing), skipping what it has:
    importing twice adds nothing."""
    from parity.core.store import Store
    from parity.core.transfer import import_dump

    if not file.exists():
        raise ConfigError(f"{file}: no such dump")
    with Store(db, migrate=True) as store:
        report = import_dump(file, store)
    out.print(f"imported {file} into {db}: {_summary(report)}", highlight=False)


@store_app.command("vacuum")
def vacuum_command(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Delete the runs started more than AGE ago (30d, 12h, 2w), with their rows, "
            "and cache entries as old; never a run being written.",
        ),
    ],
    db: DbOption = DEFAULT_DB,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be deleted; delete nothing.")
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write what was pruned here (JSON).")
    ] = None,
) -> None:
    """Retention by age: delete old runs, then VACUUM an SQLite store to give the space
    back (PostgreSQL's autovacuum does that there)."""
    from parity.cli.common import write_json
    from parity.core.store import Store
    from parity.core.transfer import parse_age, vacuum

    age = parse_age(older_than)
    with Store(_existing(db)) as store:
        pruned = vacuum(store, age, dry_run=dry_run)
    rows = ", ".join(f"{n} {t}" for t, n in sorted(pruned.rows.items())) or "no rows"
    verb = "would delete" if dry_run else "deleted"
    tail = "; vacuumed" if pruned.vacuumed else ""
    out.print(f"{db}: {verb} {len(pruned.runs)} runs older than {older_than} ({rows}){tail}")
    if json_out is not None:
        payload = {"dry_run": dry_run, "runs": pruned.runs, "rows": pruned.rows}
        write_json(json_out, json.dumps(payload, indent=2))
