"""Shared fixtures. Tests use port 0 and wait for readiness events, never sleeps."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak", action="store_true", default=False, help="also run long tests marked slow"
    )
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/**/expected.* from the current output instead of comparing",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="long soak test: run with `make soak` (pytest --soak)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
