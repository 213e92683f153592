"""A store that cannot be used says so in one line naming the path and what to do, through
the library (`StoreError`) and the real CLI (exit 2, no traceback): read-only (file system,
file, folder), full (a small tmpfs filled up, also mid-run), locked (a connection holding
BEGIN EXCLUSIVE past the busy timeout), not a database, damaged, folder missing or deleted
mid-run. Mid-run, the run is marked interrupted when the store can still be written, the
message names the resume command, and nothing committed before the failure is lost.

Real SQLite files on real file systems: tmpfs mounts need root (CAP_SYS_ADMIN) and
read-only files need chattr +i as root (chmod does not stop root); without them those tests
skip, saying why."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from parity.core.errors import ParityError, RunInterrupted, StoreError
from parity.core.exchange import Exchange, Timings
from parity.core.lifecycle import open_run
from parity.core.store import Store
from tests.cli.test_main import PARITY, paced, parity, provider_toml
from tests.scripted_server import ScriptedServer


def exchange() -> Exchange:
    return Exchange(
        request={"messages": [{"role": "user", "content": "q"}]},
        stream=False,
        timings=Timings(sent=1, headers=2, first_chunk=3, end=4),
        status=200,
        error=None,
        text="hi",
        usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        chunks=[],
    )


def interrupted_run(db: Path, exchanges: int = 3) -> str:
    with pytest.raises(RunInterrupted), open_run(db, "run", {}) as run:
        for n in range(exchanges):
            run.store.add_exchange(run.run_id, "a", "speed", f"k{n}", exchange())
        raise KeyboardInterrupt
    return run.run_id


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The CLI failed with exit 2 and one `parity: error:` line, the last on stderr."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("parity:")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == errors[0]
    return errors[0]


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A fresh tmpfs of `size` mounted at `where` (skip when this machine does not allow)."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount(where: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True)


def fill(where: Path, leave: int = 0) -> Path:
    """Fill the file system of `where`, leaving about `leave` bytes free."""
    filler = where / "filler"
    vfs = os.statvfs(where)
    room = vfs.f_bavail * vfs.f_frsize - leave
    with open(filler, "wb", buffering=0) as f:
        try:
            while room > 0:
                room -= f.write(b"\0" * min(room, 1 << 16))
            if leave == 0:
                while True:
                    f.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make `paths` really read-only: chmod for a normal user; chattr +i for root (whom
    chmod does not stop)."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    if shutil.which("chattr") is None:
        pytest.skip("root, and no chattr to make a file read-only")
    done = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"root, and chattr +i does not work here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=False)


def resume(db: Path, run_id: str, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = ["run", "--resume", run_id, "--db", str(db)]
    return parity(*args, *([str(path)] if path else []))


# read-only
def test_a_read_only_file_system(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt", "4M") as mnt:
        db = mnt / "p.db"
        run_id = interrupted_run(db)
        remount(mnt, "ro")
        with pytest.raises(StoreError) as caught:
            Store(db)
        message = str(caught.value)
        assert message.startswith(f"store {db} is read-only (")
        assert "make the file and its folder writable, or copy the store" in message
        line = one_error_line(resume(db, run_id))
        assert line.startswith(f"parity: error: store {db} is read-only")
        remount(mnt, "rw")
        with Store(db) as store:  # nothing changed
            info = store.run(run_id)
            assert info is not None and info.status == "interrupted" and info.exchanges == 3


def test_a_read_only_store_file(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    run_id = interrupted_run(db)
    providers = tmp_path / "providers.toml"
    providers.write_text(provider_toml("a", "http://127.0.0.1:9/v1", reference=True))
    with read_only(db):
        with Store(db) as store:  # it still reads...
            assert store.count_exchanges(run_id) == 3
        with pytest.raises(StoreError) as caught, open_run(db, "run", {}, resume=run_id):
            pass  # ...but cannot be written
        assert str(caught.value).startswith(f"store {db} is read-only (attempt to write a")
        line = one_error_line(resume(db, run_id, providers))
        assert line.startswith(f"parity: error: store {db} is read-only")


def test_a_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "p.db"
    run_id = interrupted_run(db)
    providers = tmp_path / "providers.toml"
    providers.write_text(provider_toml("a", "http://127.0.0.1:9/v1", reference=True))
    with read_only(folder):  # the store cannot get its -wal and -shm files
        with pytest.raises(StoreError) as caught:
            Store(db)
        assert str(caught.value).startswith(f"the folder {folder} of store {db} is read-only")
        line = one_error_line(resume(db, run_id, providers))
        assert f"the folder {folder} of store {db} is read-only" in line
        new = folder / "new.db"
        line = one_error_line(parity("run", str(providers), "--db", str(new)))
        assert f"store {new} is read-only" in line


# full
def test_a_full_disk_when_the_store_is_created(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt", "1M") as mnt:
        fill(mnt)
        db = mnt / "p.db"
        with pytest.raises(StoreError) as caught:
            Store(db)
        assert str(caught.value) == (
            f"no space left for store {db} (database or disk is full): free space on its disk,"
            " or copy the store to another disk and give that --db"
        )
        providers = tmp_path / "providers.toml"
        providers.write_text(provider_toml("a", "http://127.0.0.1:9/v1", reference=True))
        line = one_error_line(parity("run", str(providers), "--db", str(mnt / "q.db")))
        assert line.startswith(f"parity: error: no space left for store {mnt / 'q.db'}")
        sub = mnt / "sub" / "p.db"  # even its folder cannot be made
        with pytest.raises(StoreError, match=f"no space left for store {sub}"):
            Store(sub)


def test_a_disk_that_fills_up_mid_run_loses_nothing_stored_and_resumes(tmp_path: Path) -> None:
    """The field case: the run stops in one line with the resume command; what it stored
    before is intact; once there is room, the resume finishes without resending any of it."""
    with (
        tmpfs(tmp_path / "mnt", "8M") as mnt,
        ScriptedServer(scenarios={"paced": paced(0.01)}) as server,
    ):
        path = tmp_path / "providers.toml"
        path.write_text(
            provider_toml("a", server.base("paced"), reference=True, concurrency=2)
            + provider_toml("b", server.base("paced"), concurrency=2)
        )
        db = mnt / "p.db"
        args = ["--db", str(db), "--repeats", "2", "--speed-requests", "3", "--no-conformance"]
        filler = fill(mnt, leave=400_000)
        result = parity("run", str(path), *args)
        line = one_error_line(result)
        stored = set(sqlite3.connect(db).execute("SELECT provider, key FROM exchanges"))
        assert stored, "the disk filled before the first exchange"
        (run_id, status) = sqlite3.connect(db).execute("SELECT id, status FROM runs").fetchone()
        assert line.startswith(f"parity: error: no space left for store {db}")
        assert f"then continue with: parity run --db {db} --resume {run_id}" in line
        if status == "interrupted":
            assert f"run {run_id} is marked interrupted, {len(stored)} exchanges stored" in line
        else:
            assert status == "running"
            assert f"run {run_id} is left as it was (the store cannot be written)" in line

        filler.unlink()
        again = parity("run", "--resume", run_id, *args)
        assert again.returncode in (0, 1), again.stderr
        received = server.count("paced")
        con = sqlite3.connect(db)
        counts = con.execute("SELECT COUNT(*) FROM exchanges GROUP BY provider, key").fetchall()
        sent = dict(
            ((p, k), n)
            for p, k, n in con.execute("SELECT provider, key, COUNT(*) FROM sends GROUP BY 1, 2")
        )
        assert all(n == (1,) for n in counts)
        assert set(con.execute("SELECT provider, key FROM exchanges")) >= stored
        # Nothing stored before the failure was sent again: only requests in flight were.
        assert all(sent[key] == 1 for key in stored)
        # (A send logged as the run stopped may have been cancelled before it left.)
        assert received <= sum(sent.values()) and all(n <= 2 for n in sent.values())
        assert received - len(counts) <= 4  # at most the requests in flight (2 x 2)
        assert con.execute("SELECT status FROM runs").fetchone() == ("finished",)
        con.close()


# locked
def test_a_locked_store_waits_the_busy_timeout_then_says_so(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    run_id = interrupted_run(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE runs SET source = 'held'")
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as caught, Store(db, busy_timeout=0.3) as store:
            store.create_run("run", None, {}, "t")
        assert 0.3 <= time.monotonic() - started < 5
        assert str(caught.value) == (
            f"store {db} is locked by another process (database is locked; waited 0.3 s):"
            " try again once it is done, or wait longer with PARITY_BUSY_TIMEOUT=SECONDS"
        )
        providers = tmp_path / "providers.toml"
        providers.write_text(provider_toml("a", "http://127.0.0.1:9/v1", reference=True))
        fast = {"PARITY_BUSY_TIMEOUT": "0.5"}
        for args in (("run", str(providers)), ("run", "--resume", run_id, str(providers))):
            line = one_error_line(parity(*args, "--db", str(db), env=fast))
            assert line.startswith(f"parity: error: store {db} is locked by another process")
            assert "waited 0.5 s" in line
    finally:
        holder.execute("ROLLBACK")
    with Store(db) as store:
        info = store.run(run_id)
        assert info is not None and info.status == "interrupted" and store.lease(run_id) is None


def test_a_bad_busy_timeout_is_a_config_error(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    Store(db).close()
    result = parity("runs", "--db", str(db), env={"PARITY_BUSY_TIMEOUT": "soon"})
    assert "PARITY_BUSY_TIMEOUT='soon': give seconds" in one_error_line(result)


# not a store, damaged
def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    db.write_bytes(os.urandom(16384))
    with pytest.raises(StoreError) as caught:
        Store(db)
    assert str(caught.value) == (
        f"{db} is not a parity store (file is not a database): give another --db,"
        " or move this file away"
    )
    for args in (("runs",), ("run", "--resume", "x"), ("report", "x")):
        line = one_error_line(parity(*args, "--db", str(db)))
        assert line == f"parity: error: {caught.value}"


def test_a_damaged_store(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    run_id = interrupted_run(db, exchanges=200)
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for i in range(page, len(data)):  # every page after the schema's
        data[i] = (data[i] * 7 + 3) % 256
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError) as caught, Store(db) as store:  # opening may see it first
        store.runs()
    message = str(caught.value)
    assert message.startswith(f"store {db} is damaged (database disk image is malformed):")
    assert f"sqlite3 {db} .recover | sqlite3 recovered.db" in message
    for args in (("runs",), ("run", "--resume", run_id)):
        assert one_error_line(parity(*args, "--db", str(db))) == f"parity: error: {message}"


# missing folder
def test_a_folder_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("")
    db = blocker / "sub" / "p.db"
    with pytest.raises(StoreError) as caught:
        Store(db)
    assert str(caught.value).startswith(
        f"the folder of store {db} is missing and cannot be created ({blocker}"
    )
    providers = tmp_path / "providers.toml"
    providers.write_text(provider_toml("a", "http://127.0.0.1:9/v1", reference=True))
    line = one_error_line(parity("run", str(providers), "--db", str(db)))
    assert line == f"parity: error: {caught.value}"


def test_a_store_deleted_mid_run_is_saved_again_and_resumes(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    db = folder / "p.db"
    with pytest.raises(StoreError) as caught, open_run(db, "run", {}) as run:
        run.store.add_exchange(run.run_id, "a", "speed", "k1", exchange())
        shutil.rmtree(folder)  # a cleaner, or a wrong rm -rf
        run.store.add_exchange(run.run_id, "a", "speed", "k2", exchange())
        pytest.fail("the write went to a deleted file")
    message = str(caught.value)
    assert message.startswith(
        f"store {db} was deleted with its folder {folder} while this process wrote it:"
        f" what it held is saved to {db}; run {run.run_id} is marked interrupted, 1 exchanges"
        f" stored; then continue with: parity run --db {db} --resume {run.run_id}"
    )
    with Store(db) as store:
        info = store.run(run.run_id)
        assert info is not None and info.status == "interrupted" and info.exchanges == 1
        assert store.lease(run.run_id) is None
    with open_run(db, "run", {}, resume=run.run_id) as again:
        again.store.add_exchange(again.run_id, "a", "speed", "k2", exchange())
    with Store(db) as store:
        assert store.stored_keys(run.run_id, "a") == {"k1", "k2"}


def test_a_store_error_mid_run_keeps_what_was_committed(tmp_path: Path) -> None:
    """A failed write loses only itself: every exchange committed before it is there."""
    with tmpfs(tmp_path / "mnt", "2M") as mnt:
        db = mnt / "p.db"
        written: list[str] = []
        with pytest.raises(StoreError) as caught, open_run(db, "run", {}) as run:
            fill(mnt, leave=64_000)
            for n in range(10_000):
                key = f"k{n:05}"
                run.store.add_exchange(run.run_id, "a", "speed", key, exchange())
                written.append(key)
        assert "no space left for store" in str(caught.value)
        assert isinstance(caught.value, ParityError) and caught.value.exit_code == 2
        assert written
        with Store(db) as store:
            assert store.stored_keys(run.run_id, "a") == set(written)


def test_ctrl_c_while_the_store_cannot_be_written_still_says_what_to_do(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt", "2M") as mnt:
        db = mnt / "p.db"
        with pytest.raises(RunInterrupted) as caught, open_run(db, "run", {}) as run:
            run.store.add_exchange(run.run_id, "a", "speed", "k", exchange())
            fill(mnt)
            raise KeyboardInterrupt
        message = str(caught.value)
        assert "\n" not in message and f"--resume {run.run_id}" in message
        assert caught.value.exit_code == 128 + signal.SIGINT


def test_a_process_killed_while_the_disk_was_full_leaves_a_resumable_store(
    tmp_path: Path,
) -> None:
    """The field report's ending: data intact, the run resumes once there is room (its
    lease, held by a dead pid on this host, is taken over at once)."""
    with tmpfs(tmp_path / "mnt", "2M") as mnt:
        db = mnt / "p.db"
        run_id = interrupted_run(db)
        script = (
            "import sys, time\n"
            "from pathlib import Path\n"
            "from parity.core.store import Store\n"
            "s = Store(Path(sys.argv[1])); s.acquire_lease(sys.argv[2])\n"
            "print('held', flush=True); time.sleep(60)\n"
        )
        proc = subprocess.Popen(
            [*PARITY[:1], "-c", script, str(db), run_id], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        filler = fill(mnt)
        proc.kill()
        proc.wait()
        filler.unlink()
        with open_run(db, "run", {}, resume=run_id) as run:
            assert run.store.count_exchanges(run_id) == 3
