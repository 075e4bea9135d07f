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


@dataclass
class LossCurve:
    label: str  # e.g. "seed 12345"
    train: list[list[float]]  # [[step, loss], ...]
    val: list[list[float]]


def loss_chart(title: str, panels: dict[str, list[LossCurve]]) -> bytes:
    """PNG bytes: one panel per table row (shared loss axis), a line per run: the training loss
    solid, the validation loss dashed in the same colour."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(len(panels), 5) or 1
    lines = math.ceil(len(panels) / columns) or 1
    fig, axes = plt.subplots(lines, columns, figsize=(3.0 * columns, 2.4 * lines + 0.6),
                             squeeze=False, sharey=True)
    colors = plt.get_cmap("tab10").colors
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (panel, curves) in zip(axes.flat, panels.items()):
        for i, curve in enumerate(curves):
            color = colors[i % 10]
            if curve.train:
                ax.plot(*zip(*curve.train), color=color, linewidth=1, label=f"{curve.label} train")
            if curve.val:
                ax.plot(*zip(*curve.val), "--", color=color, linewidth=1,
                        label=f"{curve.label} val")
        if not curves:
            ax.text(0.5, 0.5, "no finished run", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
        ax.set_title(panel, fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=7)
        if curves:
            ax.legend(fontsize=6)
    fig.suptitle(f"{title}\n(loss KL − CC as each run recorded it: solid training, dashed "
                 "validation)", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
