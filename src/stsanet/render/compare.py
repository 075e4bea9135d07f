"""The qualitative comparison figure (the style of the paper's Fig. 5): one line per example
frame, with the frame, its ground truth with the fixations, and each model's predicted map as an
overlay, the model's CC on that frame in the corner."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from stsanet.render.overlay import overlay

# pixels of the longer side of each cell: enough to read a map, small enough for a page
CELL_PIXELS = 240


@dataclass
class ExamplePanel:
    """One line of the figure: what was shown, and why that frame."""

    caption: str  # e.g. "0604 frame 37 · rows disagree most (CC spread 0.21)"
    frame: np.ndarray  # H × W × 3 uint8
    truth: np.ndarray | None  # H × W ground-truth map (any range), None: not annotated
    fixations: np.ndarray | None  # H × W bool, None: no fixation file
    maps: list[np.ndarray | None]  # one per column (model); None: that model has no map here
    scores: list[float]  # CC of each column's map on this frame (NaN: undefined)


def _thumbnail(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an H × W (float) or H × W × 3 (uint8) image to (height, width)."""
    height, width = size
    if image.ndim == 2:
        resized = Image.fromarray(np.asarray(image, dtype=np.float32), mode="F")
        return np.asarray(resized.resize((width, height), Image.BILINEAR))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def comparison_figure(title: str, columns: list[str], panels: list[ExamplePanel]) -> bytes:
    """PNG bytes: a grid with a line per panel and the columns frame | ground truth | models."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not panels:
        raise ValueError("comparison_figure needs at least one example frame")
    def cell_size(frame: np.ndarray) -> tuple[int, int]:
        height, width = frame.shape[:2]
        scale = CELL_PIXELS / max(height, width)
        return max(1, round(height * scale)), max(1, round(width * scale))

    # the cells have the first frame's shape; other shapes (videos differ) are letterboxed
    size = cell_size(panels[0].frame)
    headers = ["frame", "ground truth + fixations", *columns]
    # inches: cells, the gaps between them, the captions on the left, the titles on top
    cell_w, gap, left, top = 2.0, 0.06, 1.3, 0.75
    cell_h = cell_w * size[0] / size[1]
    fig_w = left + len(headers) * (cell_w + gap)
    fig_h = top + len(panels) * (cell_h + gap) + 0.1
    fig, axes = plt.subplots(len(panels), len(headers), squeeze=False, figsize=(fig_w, fig_h))
    fig.subplots_adjust(left=left / fig_w, right=1 - gap / fig_w, top=1 - top / fig_h,
                        bottom=0.1 / fig_h, wspace=gap / cell_w, hspace=gap / cell_h)
    for line, (panel, row_axes) in enumerate(zip(panels, axes)):
        size = cell_size(panel.frame)
        frame = _thumbnail(panel.frame, size)
        cells = [frame]
        cells.append(overlay(frame, _thumbnail(panel.truth, size))
                     if panel.truth is not None else frame)
        cells += [overlay(frame, _thumbnail(m, size)) if m is not None else None
                  for m in panel.maps]
        for column, (ax, cell) in enumerate(zip(row_axes, cells)):
            ax.set_xticks([])
            ax.set_yticks([])
            if cell is None:
                ax.text(0.5, 0.5, "no map", ha="center", va="center", fontsize=8,
                        transform=ax.transAxes)
            else:
                ax.imshow(cell)
            if line == 0:
                ax.set_title(headers[column], fontsize=8)
            if column == 1 and panel.fixations is not None:
                rows, cols = np.nonzero(panel.fixations)
                fix_h, fix_w = panel.fixations.shape
                ax.scatter((cols + 0.5) * size[1] / fix_w - 0.5,
                           (rows + 0.5) * size[0] / fix_h - 0.5, s=4,
                           c="white", edgecolors="black", linewidths=0.3)
                ax.set_xlim(-0.5, size[1] - 0.5)
                ax.set_ylim(size[0] - 0.5, -0.5)
            if column >= 2 and cell is not None:
                score = panel.scores[column - 2]
                text = "CC —" if not math.isfinite(score) else f"CC {score:.2f}"
                ax.text(0.03, 0.05, text, transform=ax.transAxes, fontsize=7, color="white",
                        va="bottom", bbox={"facecolor": "black", "alpha": 0.6, "pad": 1.5,
                                           "linewidth": 0})
        row_axes[0].set_ylabel(panel.caption, fontsize=6, rotation=0, ha="right", va="center",
                               wrap=True)
    fig.suptitle(title, fontsize=8, y=1 - 0.08 / fig_h, va="top")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
