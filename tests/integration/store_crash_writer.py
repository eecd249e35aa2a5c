"""Child process for test_store_crash.py: writes creates to an SQLiteStore until killed.

Usage: store_crash_writer.py DB_PATH ROUND. Alternates single creates with 20-record
transactions and prints one line per acknowledged write, flushed after the write returns:
`key <name>` for a create, `batch <prefix> <count>` for a transaction.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gossamer.store import Op
from gossamer.store.sqlite import SQLiteStore

BATCH = 20


async def write_forever(path: Path, round_: str) -> None:
    store = SQLiteStore(path)
    i = 0
    while True:
        name = f"r{round_}-{i}"
        await store.create("Service", "crash", name, {"metadata": {"name": name}, "n": i})
        print(f"key {name}", flush=True)
        prefix = f"r{round_}-b{i}"
        ops = [
            Op("put", "Service", "crash", f"{prefix}-{k}", {"metadata": {"name": prefix}, "k": k})
            for k in range(BATCH)
        ]
        await store.txn(ops)
        print(f"batch {prefix} {BATCH}", flush=True)
        i += 1


if __name__ == "__main__":
    asyncio.run(write_forever(Path(sys.argv[1]), sys.argv[2]))
