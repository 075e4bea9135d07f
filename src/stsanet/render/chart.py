"""Bar charts of an ablation table: one panel per metric, the seed spread beside the paper."""

from __future__ import annotations

import io
from dataclasses import dataclass


@dataclass
class Bar:
    label: str
    seeds: list[float]  # one value per finished seed
    mean: float | None  # None: nothing finished (drawn hatched)
    std: float | None
    paper: float | None = None


def bar_chart(title: str, panels: dict[str, list[Bar]]) -> bytes:
    """PNG bytes: per panel (title -> bars) the mean over seeds as a bar with the seed std as
    error bar, each seed as a small dot, the paper's value as a black diamond."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 4.0), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for ax, (panel, bars) in zip(axes[0], panels.items()):
        positions = list(range(len(bars)))
        drawn = ax.bar(positions, [b.mean or 0.0 for b in bars], yerr=[b.std or 0.0 for b in bars],
                       capsize=3, color=[colors[i % 10] for i in positions], ecolor="black")
        for i, (patch, bar) in enumerate(zip(drawn, bars)):
            if bar.mean is None:
                patch.set_hatch("//")
                patch.set_alpha(0.3)
            ax.plot([i] * len(bar.seeds), bar.seeds, ".", color="grey", markersize=3)
        paper = [(i, b.paper) for i, b in enumerate(bars) if b.paper is not None]
        if paper:
            ax.plot(*zip(*paper), "kD", markersize=4, label="paper")
        ax.set_title(panel)
        ax.set_xticks(positions)
        ax.set_xticklabels([b.label for b in bars], rotation=60, ha="right", fontsize=7)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{title}\n(bars: mean over seeds, error bars: std, dots: seeds, "
                 "diamonds: paper)", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
