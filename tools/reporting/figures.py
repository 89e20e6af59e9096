"""The report's figures: the accuracy per iteration and the training curves, drawn together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from postlab.tools.reporting.curves import (
    CURVES_FILE,
    anomalies,
    in_order,
    plot_curves,
    read_curves,
)
from postlab.tools.reporting.scores import PLOT_FILE, plot_scores


@dataclass(frozen=True)
class ReportPlots:
    """The report's figures, drawn before its text (their file names, and what the training
    curves showed that a reader should notice)."""

    scores: str | None
    curves: str | None
    noticed: list[str]


def draw_plots(run_dir: Path, summary: dict[str, Any]) -> ReportPlots:
    """Write scores.png and the training curves' plot into the run directory."""
    plot = plot_scores(summary, run_dir / PLOT_FILE)
    iterations = summary.get("iterations") or []
    curves = read_curves(iterations)
    curves_plot = plot_curves(curves, run_dir / CURVES_FILE)
    noticed = anomalies(curves, in_order(iterations))
    return ReportPlots(
        plot.name if plot else None, curves_plot.name if curves_plot else None, noticed
    )
