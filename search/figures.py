"""Figures of a search: the metric per trial over time, learning curves, parameter importances."""

from __future__ import annotations

from pathlib import Path

from search.space import SearchSpace
from search.trials import TrialRow
from vgd.plots import pyplot, save_figure

STYLE = {
    "completed": dict(color="C0", marker="o"),
    "stopped": dict(color="C1", marker="v"),
    "failed": dict(color="C3", marker="x"),
    "running": dict(color="grey", marker="."),
    "pending": dict(color="grey", marker="."),
}


def search_figure(rows: list[TrialRow], space: SearchSpace, path: Path) -> Path:
    """Left: each trial's metric at its end time, with the running best. Right: per-epoch curves."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    t0 = min((r.start for r in rows if r.start), default=0.0)
    scored = sorted((r for r in rows if r.value is not None), key=lambda r: r.end)
    span = max((r.end - t0 for r in scored), default=0.0)
    unit, scale = ("minutes", 60.0) if span > 180 else ("seconds", 1.0)
    for status, style in STYLE.items():
        pts = [r for r in scored if r.status == status]
        if pts:
            ax1.scatter(
                [(r.end - t0) / scale for r in pts],
                [r.value for r in pts],
                label=f"{status} ({len(pts)})",
                **style,
            )
    best, xs, ys = None, [], []
    for r in scored:
        if best is None or (r.value > best if space.mode == "max" else r.value < best):
            best = r.value
        xs.append((r.end - t0) / scale)
        ys.append(best)
    ax1.step(xs, ys, where="post", color="k", lw=1, label="best so far")
    ax1.set_xlabel(f"{unit} since the search started")
    ax1.set_ylabel(f"{space.metric} ({'last epoch' if space.ranks_last_epoch else 'best epoch'})")
    ax1.set_title(f"{space.name}: {len(rows)} trials")
    ax1.legend(fontsize=8)
    for r in rows:
        points = [(epoch, v) for epoch, v in enumerate(r.curve, 1) if v is not None]
        if points:
            style = STYLE.get(r.status, STYLE["completed"])
            ax2.plot(*zip(*points), color=style["color"], alpha=0.6, lw=1)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel(space.metric)
    ax2.set_title("per-epoch curves (orange: stopped by the scheduler)", fontsize=9)
    return save_figure(fig, path)


def importance_figure(importances: dict[str, float], path: Path, note: str = "") -> Path:
    """Horizontal bars of Optuna's parameter importances; ``note`` says why there are none."""
    plt = pyplot()
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(names) + 1))
    if names:
        ax.barh(names, [importances[n] for n in names], color="C0")
    else:
        ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel("importance (Optuna, normalised)")
    return save_figure(fig, path)
