"""Processes the bench starts: each in its own process group, all killed on the way out.

Also the /proc readers the cost measures need (CPU ticks and RSS of a process tree).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class HarnessError(RuntimeError):
    """A proxy or peer misbehaved (did not start, errors, wrong bodies): the run is not valid."""


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def pinned(cmd: Sequence[str], core: int | None) -> list[str]:
    """Prefix `cmd` with taskset when pinning is possible (two cores or more)."""
    if core is None or cpu_count() < 2:
        return list(cmd)
    return ["taskset", "-c", str(core), *cmd]


def free_port() -> int:
    """A port that was free a moment ago, for peers (nginx, HAProxy) that cannot report port 0."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, proc: asyncio.subprocess.Process, within: float = 10.0) -> None:
    """Wait until something accepts on 127.0.0.1:port; fail at once if the process died."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    delay = 0.005
    while True:
        if proc.returncode is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise TimeoutError(f"nothing listens on port {port} after {within}s") from None
            await asyncio.sleep(delay)  # no readiness signal from nginx/HAProxy: poll, backing off
            delay = min(delay * 2, 0.1)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


@dataclass
class Started:
    name: str
    proc: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class ProcessSet:
    """Starts processes in new sessions; leaving the `async with` kills every group (also on
    error or Ctrl-C). Readers of the children's stdout live in its task group."""

    workdir: Path
    started: list[Started] = field(default_factory=list)
    _group: asyncio.TaskGroup | None = None

    async def __aenter__(self) -> ProcessSet:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.close()
        finally:
            # The readers end once their processes are gone; let the body's own exception
            # (if any) propagate as itself rather than wrapped in an ExceptionGroup.
            assert self._group is not None
            await self._group.__aexit__(None, None, None)

    async def start_ready(
        self,
        name: str,
        cmd: Sequence[str],
        markers: Sequence[bytes],
        *,
        core: int | None,
        within: float = 30,
        env: dict[str, str] | None = None,
    ) -> tuple[Started, bytes]:
        """Start `cmd` and wait for the stdout line holding one of `markers` (its ready line); the
        rest of stdout is copied to the log so the child never blocks on a full pipe."""
        started = await self.start(name, cmd, core=core, stdout_pipe=True, env=env)
        stdout = started.proc.stdout
        assert stdout is not None and self._group is not None
        try:
            async with asyncio.timeout(within):
                while True:
                    line = await stdout.readline()
                    if any(marker in line for marker in markers):
                        break
                    if not line:
                        raise HarnessError(f"{name} exited before ready:\n{started.log_tail()}")
        except TimeoutError:
            raise HarnessError(
                f"{name}: no ready line in {within}s:\n{started.log_tail()}"
            ) from None
        self._group.create_task(_copy_to_log(stdout, started.log))
        return started, line

    async def start(
        self,
        name: str,
        cmd: Sequence[str],
        *,
        core: int | None = None,
        stdout_pipe: bool = False,
        env: dict[str, str] | None = None,
    ) -> Started:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as log_file:
            proc = await asyncio.create_subprocess_exec(
                *pinned(cmd, core),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if stdout_pipe else log_file,
                stderr=log_file,
                start_new_session=True,
                env=env,
            )
        started = Started(name, proc, log)
        self.started.append(started)
        return started

    async def stop(self, item: Started, grace: float = 3.0) -> None:
        if item.proc.returncode is None:
            _signal_group(item.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(item.proc.wait(), grace)
            except TimeoutError:
                _signal_group(item.pid, signal.SIGKILL)
                await item.proc.wait()
        # The group may outlive its leader (nginx workers): make sure none is left.
        _signal_group(item.pid, signal.SIGKILL)
        if item in self.started:
            self.started.remove(item)

    async def close(self) -> None:
        for item in reversed(list(self.started)):
            with contextlib.suppress(ProcessLookupError, OSError):
                await self.stop(item)

    def kill_now(self) -> None:
        """Synchronous last resort (atexit, or a loop that is already gone)."""
        for item in self.started:
            _signal_group(item.pid, signal.SIGKILL)


async def _copy_to_log(stream: asyncio.StreamReader, log: Path) -> None:
    with log.open("ab") as out:
        while chunk := await stream.read(65536):
            out.write(chunk)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


# --- /proc readers --------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """`root` and every live descendant (nginx master + workers, taskset's exec'd child)."""
    children = _children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def parse_cpu_ticks(stat_line: str) -> int:
    """utime + stime + cutime + cstime from a /proc/<pid>/stat line."""
    fields = stat_line.rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime is field 14 -> index 11.
    return sum(int(value) for value in fields[11:15])


def parse_rss_kib(status_text: str) -> int:
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0  # zombie or kernel thread: no resident set


def tree_cpu_seconds(pids: Sequence[int]) -> float:
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            ticks += parse_cpu_ticks(Path(f"/proc/{pid}/stat").read_text())
    return ticks / CLOCK_TICKS


def tree_rss_mib(pids: Sequence[int]) -> float:
    kib = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            kib += parse_rss_kib(Path(f"/proc/{pid}/status").read_text())
    return kib / 1024
