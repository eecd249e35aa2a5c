"""Running the real `gossamer` binary as a subprocess, for the CLI integration tests."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

GOSSAMER = str(Path(sys.executable).with_name("gossamer"))


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    control: str
    env: dict[str, str]

    def __call__(self, *args: str, stdin: str | None = None, control: bool = True) -> Result:
        """Run `gossamer ARGS`, against this control plane unless control=False."""
        argv = [GOSSAMER, *args] + (["--control", self.control] if control else [])
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, env=self.env, timeout=60
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def auth_headers(self) -> dict[str, str]:
        """The control plane's admin credential, for tests that call the API directly."""
        data = self.env.get("GOSSAMER_DATA_DIR")
        if data is None:
            return {}
        token = (Path(data) / "credentials" / "admin.token").read_text().strip()
        return {"Authorization": f"Bearer {token}"}
