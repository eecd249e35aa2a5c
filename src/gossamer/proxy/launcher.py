"""`gossamer run`: the app as a child process of its sidecar.

The app stays in the sidecar's process group (a supervisor killing the group kills both)
and, on Linux, also gets SIGKILL if the sidecar dies without cleaning up (PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Mapping

_PR_SET_PDEATHSIG = 1


def app_environment(base: Mapping[str, str], app_port: int, outbound_port: int) -> dict[str, str]:
    """The app's environment: its port, and its sidecar as HTTP proxy for plain HTTP."""
    env = dict(base)
    proxy = f"http://127.0.0.1:{outbound_port}"
    no_proxy = "localhost,127.0.0.1"
    env.update(
        PORT=str(app_port),
        HTTP_PROXY=proxy,
        http_proxy=proxy,
        NO_PROXY=no_proxy,
        no_proxy=no_proxy,
    )
    return env


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class App:
    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.command = command
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.command, env=self.env, preexec_fn=_die_with_parent
        )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def wait(self) -> int:
        assert self.proc is not None
        return await self.proc.wait()

    async def stop(self, grace: float) -> int:
        """SIGTERM, then SIGKILL after `grace` seconds; return the exit code."""
        proc = self.proc
        if proc is None:
            return 0
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(grace):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        return proc.returncode if proc.returncode is not None else 0


def exit_code(returncode: int) -> int:
    """A child killed by signal N reports -N; a shell would say 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def current_environ() -> dict[str, str]:
    return dict(os.environ)
