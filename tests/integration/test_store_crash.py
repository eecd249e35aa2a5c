"""Crash safety: kill -9 a process mid-burst of writes; every acknowledged write survives,
every transaction is all-or-nothing, and the file passes PRAGMA integrity_check."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gossamer.store.sqlite import SQLiteStore

WRITER = Path(__file__).with_name("store_crash_writer.py")


def run_and_kill(db: Path, round_: int, acks_before_kill: int) -> list[str]:
    """Start a writer, SIGKILL it after `acks_before_kill` acknowledgements; every ack line."""
    child = subprocess.Popen(
        [sys.executable, str(WRITER), str(db), str(round_)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acks: list[str] = []
    try:
        assert child.stdout is not None
        while len(acks) < acks_before_kill:
            line = child.stdout.readline()
            if not line:
                pytest.fail(
                    f"writer exited early: {child.wait()} {child.stderr.read() if child.stderr else ''}"
                )
            acks.append(line.strip())
        child.send_signal(signal.SIGKILL)
        acks.extend(line.strip() for line in child.stdout)  # printed before the kill landed
    finally:
        child.kill()
        child.wait()
        for stream in (child.stdout, child.stderr):
            if stream:
                stream.close()
    assert child.returncode == -signal.SIGKILL
    return acks


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    acknowledged: set[str] = set()
    batches: set[str] = set()
    for round_, acks_before_kill in enumerate([10, 60, 150, 300]):
        for ack in run_and_kill(db, round_, acks_before_kill):
            what, name, *_ = ack.split()
            (acknowledged if what == "key" else batches).add(name)

        with contextlib.closing(sqlite3.connect(db)) as check:
            assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

        store = SQLiteStore(db)
        try:
            records, revision = await store.list("Service", namespace="crash")
        finally:
            await store.close()
        names = {r.name for r in records}
        assert acknowledged <= names, sorted(acknowledged - names)[:5]
        by_batch: dict[str, int] = {}
        for r in records:
            if "-b" in r.name:
                prefix = r.name.rsplit("-", 1)[0]
                by_batch[prefix] = by_batch.get(prefix, 0) + 1
        assert batches <= set(by_batch)
        assert set(by_batch.values()) == {20}, "a transaction was partly written"
        singles = {name for name in names if "-b" not in name}
        assert revision == len(singles) + len(by_batch)  # one revision per committed write
        print(
            f"round {round_}: {len(acknowledged)} creates and {len(batches)} batches acknowledged, "
            f"{len(names)} records on disk at revision {revision}"
        )
