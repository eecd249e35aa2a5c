"""The telemetry push body: deltas since the last report, accepted by the control plane's own
validator, with bounded paths."""

from __future__ import annotations

from gossamer.control.telemetry import parse_report
from gossamer.proxy.telemetry.report import TOP_PATHS, Sent, build_report
from gossamer.proxy.telemetry.series import MAX_PATHS, SeriesKey
from gossamer.proxy.telemetry.stats import Stats
from gossamer.wire import BUCKETS

OUT: SeriesKey = ("outbound", "default/frontend", "default/reviews", "default/reviews", 0, "v2", True)  # fmt: skip
EGRESS: SeriesKey = ("outbound", "default/frontend", "", "", -1, "", False)


def record(stats: Stats, key: SeriesKey, status: int, seconds: float, path: bytes) -> None:
    stats._count(key, status, "", seconds)
    stats.series[key].add_path(path)


def test_first_report_then_only_deltas() -> None:
    stats = Stats("default/frontend")
    for _ in range(3):
        record(stats, OUT, 200, 0.004, b"/api/reviews")
    record(stats, OUT, 503, 0.3, b"/api/other")
    record(stats, OUT, 0, 12.0, b"/api/reviews")  # no response at all: +Inf, "none"
    record(stats, EGRESS, 200, 0.01, b"/")  # egress: Prometheus only
    sent: Sent = {}
    body = build_report(stats.series, sent, 100.0, 105.0)
    report = parse_report(body)  # the control plane's validator accepts it as is
    (series,) = report.series
    assert series.key == ("outbound", "default/frontend", "default/reviews", "default/reviews#0", "version=v2", True)  # fmt: skip
    assert series.codes == {"2xx": 3, "5xx": 1, "none": 1}
    assert series.counts[BUCKETS.index(0.005)] == 3
    assert series.counts[BUCKETS.index(0.5)] == 1
    assert series.counts[-1] == 1
    assert series.paths == {"/api/reviews": 4, "/api/other": 1}
    assert abs(series.total_seconds - (0.012 + 0.3 + 12.0)) < 1e-9

    record(stats, OUT, 200, 0.004, b"/api/reviews")
    second = parse_report(build_report(stats.series, sent, 105.0, 110.0))
    assert second.series[0].codes == {"2xx": 1}
    assert sum(second.series[0].counts) == 1
    assert second.series[0].paths == {"/api/reviews": 1}
    assert build_report(stats.series, sent, 110.0, 115.0)["series"] == []  # nothing new


def test_paths_are_bounded_and_the_busiest_are_reported() -> None:
    stats = Stats("default/frontend")
    for i in range(MAX_PATHS + 50):
        for _ in range(1 + (i % 7)):
            record(stats, OUT, 200, 0.001, f"/p/{i}".encode())
    assert len(stats.series[OUT].paths) == MAX_PATHS
    body = build_report(stats.series, {}, 0.0, 1.0)
    paths = body["series"][0]["paths"]
    assert len(paths) == TOP_PATHS
    assert min(paths.values()) == 7  # only the busiest
    parse_report(body)
