"""Plots of searched-tree statistics (matplotlib, written to PNG without a display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_q_distributions(records: list[dict[str, Any]], path: str | Path) -> Path:
    """Histogram of Q(chosen) vs Q(rejected): how clearly the search separates the branches."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    q_w = [r["q_chosen"] for r in records]
    q_l = [r["q_rejected"] for r in records]
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = 20
    ax.hist(q_w, bins=bins, alpha=0.6, label=f"winning branch (n={len(q_w)})")
    ax.hist(q_l, bins=bins, alpha=0.6, label=f"losing branch (n={len(q_l)})")
    ax.set_xlabel("step-level Q-value from MCTS")
    ax.set_ylabel("pairs")
    ax.set_title("Q-values of preference pairs")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
