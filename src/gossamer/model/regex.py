"""Apply-time checks of the regular expressions in HTTPRoute matches.

Sidecars match with RE2 (linear time, proxy/routing.py), so no pattern can run away at
request time; these caps bound what one pattern may cost to compile and to hold, and a
pattern RE2 refuses is refused here, naming the field, instead of in every sidecar.
"""

from __future__ import annotations

import functools
from typing import Any

# Characters of one pattern. Paths are matched in full; a real route pattern is short.
MAX_REGEX_LENGTH = 1024
# RE2 program size (instructions of the compiled automaton, `re2.compile(p).programsize`):
# `[a-z]{200}` is 204, `^/api/v[0-9]+/users/[^/]+$` is 22. Envoy caps the same figure
# (max_program_size); 1000 leaves room for real routes and refuses counted-repetition blowups.
MAX_REGEX_PROGRAM_SIZE = 1000


@functools.cache
def _options() -> Any:
    import re2  # loaded on the first regex checked: a CLI or server without one skips it

    options = re2.Options()
    options.log_errors = False  # the error is raised to the caller; no C++ log line
    return options


def check_regex(pattern: str) -> None:
    """Raise ValueError (the reason, to be named by the caller's field) if ``pattern`` is
    not a valid RE2 expression or exceeds the caps."""
    import re2

    if len(pattern) > MAX_REGEX_LENGTH:
        raise ValueError(
            f"regular expression is {len(pattern)} characters; the cap is {MAX_REGEX_LENGTH}"
        )
    try:
        compiled = re2.compile(pattern, _options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(f"invalid regular expression {pattern!r}: {reason}") from None
    size = compiled.programsize
    if size > MAX_REGEX_PROGRAM_SIZE:
        raise ValueError(
            f"regular expression {pattern[:60]!r} compiles to an RE2 program of size {size};"
            f" the cap is {MAX_REGEX_PROGRAM_SIZE} (simplify it, e.g. fewer counted repetitions)"
        )
