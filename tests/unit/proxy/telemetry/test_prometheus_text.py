"""The metrics text: merged label sets, cumulative histograms, and `promtool check metrics`."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from gossamer.proxy.telemetry.series import SeriesKey
from gossamer.proxy.telemetry.stats import Stats

V1: SeriesKey = ("outbound", "default/frontend", "default/reviews", "default/reviews", 0, "v1", False)  # fmt: skip
V2: SeriesKey = ("outbound", "default/frontend", "default/reviews", "default/reviews", 0, "v2", False)  # fmt: skip


def populated() -> Stats:
    stats = Stats("default/frontend", "v1")
    stats._count(V1, 200, "", 0.002)
    stats._count(V2, 200, "", 0.02)
    stats._count(V2, 504, "upstream_timeout", 3.0)
    stats.request_done("inbound", 400, "bad_request")
    stats.connection_opened("outbound")
    stats.tls_handshake_failure("unknown_ca")
    stats.authz_denied("no_allow_match", 'default/"quoted"')
    stats.drop("span", 3)
    stats.retries = 2
    stats.register_gauge("gossamer_snapshot_version", "Snapshot applied.", lambda: 7)
    return stats


def test_subsets_merge_into_one_label_set() -> None:
    text = populated().render_prometheus().decode()
    labels = 'direction="outbound",src_service="default/frontend",dst_service="default/reviews",route="default/reviews#0"'  # fmt: skip
    assert f'gossamer_requests_total{{{labels},code="200"}} 2\n' in text
    assert f'gossamer_requests_total{{{labels},code="504"}} 1\n' in text
    assert f'gossamer_request_duration_seconds_bucket{{{labels},le="0.0025"}} 1\n' in text
    assert f'gossamer_request_duration_seconds_bucket{{{labels},le="0.025"}} 2\n' in text
    assert f'gossamer_request_duration_seconds_bucket{{{labels},le="+Inf"}} 3\n' in text
    assert f"gossamer_request_duration_seconds_count{{{labels}}} 3\n" in text
    assert 'gossamer_timeouts_total{direction="outbound"} 1\n' in text
    assert 'gossamer_rejections_total{direction="inbound",reason="bad_request"} 1\n' in text
    assert 'gossamer_authz_denials_total{reason="no_allow_match",policy="default/\\"quoted\\""} 1' in text  # fmt: skip
    assert 'gossamer_tls_handshake_failures_total{reason="unknown_ca"} 1\n' in text
    assert 'gossamer_telemetry_dropped_total{kind="span"} 3\n' in text
    assert "gossamer_retries_total 2\n" in text
    assert "gossamer_snapshot_version 7\n" in text


def test_tls_failure_reasons_are_bounded() -> None:
    stats = Stats()
    for i in range(200):
        stats.tls_handshake_failure(f"reason-{i}")
    assert len(stats.tls_failures) <= 65 and stats.tls_failures["other"] > 0


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool: make system-deps")
def test_promtool_check_metrics_passes() -> None:
    for stats in (Stats(), populated()):
        result = subprocess.run(
            ["promtool", "check", "metrics"],
            input=stats.render_prometheus(),
            capture_output=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout + result.stderr == b"", result.stdout + result.stderr  # no lint
