"""Golden-file tests: `pytest --update-golden` (option in tests/conftest.py) rewrites expected files."""

from __future__ import annotations

import pytest


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
