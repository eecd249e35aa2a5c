"""One series' sliding window: a ring of 10-second slots covering 10 minutes.

Pure and clock-free: every call takes `now` (Unix seconds, the control plane's clock).
A slot is reused in place when the ring wraps, so a series never holds more than SLOT_COUNT
slots, each with at most MAX_PATHS_PER_SLOT paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gossamer.control.telemetry.histogram import add_counts, empty_counts

SLOT_SECONDS = 10.0
SLOT_COUNT = 60  # 10 minutes
HORIZON_SECONDS = SLOT_SECONDS * SLOT_COUNT
MAX_PATHS_PER_SLOT = 50


def slot_index(now: float) -> int:
    return int(now // SLOT_SECONDS)


@dataclass(slots=True)
class Totals:
    """Everything a window query sums up: codes, the merged histogram, paths."""

    codes: dict[str, int] = field(default_factory=dict)
    counts: list[int] = field(default_factory=empty_counts)
    total_seconds: float = 0.0
    paths: dict[str, int] = field(default_factory=dict)
    first_start: float = float("inf")  # earliest report interval start folded in

    @property
    def requests(self) -> int:
        return sum(self.codes.values())

    @property
    def failures(self) -> int:
        # No status at all (reset, timeout before a response) is a failure too.
        return self.codes.get("5xx", 0) + self.codes.get("none", 0)

    def add(
        self,
        codes: dict[str, int],
        counts: Iterable[int],
        total_seconds: float,
        paths: dict[str, int],
        start: float,
    ) -> None:
        for code, n in codes.items():
            self.codes[code] = self.codes.get(code, 0) + n
        add_counts(self.counts, list(counts))
        self.total_seconds += total_seconds
        for path, n in paths.items():
            self.paths[path] = self.paths.get(path, 0) + n
        self.first_start = min(self.first_start, start)

    def merge(self, other: Totals) -> None:
        self.add(other.codes, other.counts, other.total_seconds, other.paths, other.first_start)


@dataclass(slots=True)
class Slot:
    index: int
    totals: Totals = field(default_factory=Totals)


class SeriesWindow:
    __slots__ = ("last_index", "ring")

    def __init__(self) -> None:
        self.ring: list[Slot | None] = [None] * SLOT_COUNT
        self.last_index = -1

    def add(
        self,
        now: float,
        codes: dict[str, int],
        counts: list[int],
        total_seconds: float,
        paths: dict[str, int],
        start: float,
    ) -> None:
        index = slot_index(now)
        pos = index % SLOT_COUNT
        slot = self.ring[pos]
        if slot is None or slot.index != index:  # empty, or 10 minutes old: reuse
            slot = self.ring[pos] = Slot(index)
        slot.totals.add(codes, counts, total_seconds, paths, start)
        if len(slot.totals.paths) > MAX_PATHS_PER_SLOT:
            busiest = sorted(slot.totals.paths.items(), key=lambda kv: (-kv[1], kv[0]))
            slot.totals.paths = dict(busiest[:MAX_PATHS_PER_SLOT])
        self.last_index = max(self.last_index, index)

    def totals(self, now: float, window: float, into: Totals | None = None) -> Totals:
        """Sum of the slots that end after `now - window` (the oldest may be partial)."""
        out = into if into is not None else Totals()
        oldest = slot_index(now - min(window, HORIZON_SECONDS - SLOT_SECONDS))
        newest = slot_index(now)
        for slot in self.ring:
            if slot is not None and oldest <= slot.index <= newest:
                out.merge(slot.totals)
        return out

    def expired(self, now: float) -> bool:
        return self.last_index < slot_index(now) - SLOT_COUNT
