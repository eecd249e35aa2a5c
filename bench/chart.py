"""The PNG: latency each proxy adds over direct, per percentile, against the offered load.

Only when matplotlib is installed (the `bench` extra); without it the run has no chart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PERCENTILES = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9"))
KINDS = (
    ("service", "added service time (from send), ms"),
    ("latency", "added latency (from due time), ms"),
)


def series(added: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by topology ("proxy path"), each group sorted by rate; pure."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in added:
        out.setdefault(f"{row['proxy']} {row['path']}", []).append(row)
    return {name: sorted(rows, key=lambda r: float(r["rate"])) for name, rows in out.items()}


def chart(results: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    added = (results.get("dataplane") or {}).get("added_latency") or []
    if not added:
        return None
    groups = series(added)
    fig, axes = plt.subplots(len(KINDS), len(PERCENTILES), figsize=(18, 8), squeeze=False)
    styles = {"one-hop": ":", "mesh": "--", "mesh-tls": "-"}
    colours = {"haproxy": "tab:blue", "nginx": "tab:green", "gossamer": "tab:red"}
    for row_index, (kind, ylabel) in enumerate(KINDS):
        for col, (key, title) in enumerate(PERCENTILES):
            ax = axes[row_index][col]
            for name, rows in groups.items():
                proxy, topology_path = name.split(" ", 1)
                ax.plot(
                    [r["rate"] for r in rows],
                    [r[f"{kind}_{key}"] for r in rows],
                    linestyle=styles.get(topology_path, "-"),
                    color=colours.get(proxy),
                    marker="o",
                    label=name,
                )
            ax.axhline(0, color="grey", linewidth=0.5)
            # Sub-millisecond medians and 100 ms tails on one axis: linear below 1 ms.
            ax.set_yscale("symlog", linthresh=1.0)
            ax.set_title(f"{title}")
            ax.set_xlabel("offered load, req/s")
            if col == 0:
                ax.set_ylabel(ylabel)
    axes[0][0].legend(fontsize="small")
    meta = results.get("meta", {})
    fig.suptitle(
        f"Latency added over a direct connection, 1 KiB, open loop ({meta.get('date', '')}, "
        f"{meta.get('cpus', '?')} x {meta.get('cpu_model', '?')})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
