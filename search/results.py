"""What a search leaves behind: trials.csv, best_config.yaml, the best checkpoint, a top-k table,
a figure of the search and Optuna's parameter importances."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from pathlib import Path
from typing import Any

from search.progress import trial_outcome
from search.space import SearchSpace, trial_overrides
from search.trials import TrialRow
from vgd.config import TrainConfig, apply_overrides, save_config
from vgd.io import atomic_write_json, atomic_write_text
from vgd.train import validated

log = logging.getLogger(__name__)
MIN_TRIALS_FOR_IMPORTANCE = 5


def collect_rows(analysis: Any, space: SearchSpace, default_epochs: int) -> list[TrialRow]:
    """A Tune ExperimentAnalysis → one TrialRow per trial, in start order."""
    rows = [_row(t, _history(t), space, default_epochs) for t in analysis.trials]
    return sorted(rows, key=lambda row: row.order)


def _row(trial: Any, history: list[dict], space: SearchSpace, default_epochs: int) -> TrialRow:
    params = trial_overrides(space, trial.config or {})
    epochs_planned = int(params.get("optim.epochs", default_epochs))
    last = history[-1] if history else dict(trial.last_result or {})
    row = TrialRow(
        trial_id=trial.trial_id,
        status=trial_outcome(trial.status, last, epochs_planned),
        params=params,
        value=None,
        error=_error(trial),
        checkpoint=trial.checkpoint.path if trial.checkpoint else "",
        failures=trial.num_failures,
        order=int(str(trial.experiment_tag).split("_")[0] or 0),
    )
    if not history:
        return row
    best_epoch = int(last.get("best_epoch", last.get("epoch", 0)))
    at_best = next((h for h in history if h.get("epoch") == best_epoch), last)
    judged = last if space.ranks_last_epoch else at_best
    row.metrics = {k: v for k, v in judged.items() if k.startswith("val_")}
    row.value = judged.get(space.metric)
    row.epochs, row.best_epoch = int(last.get("epoch", 0)), best_epoch
    row.seconds = float(last.get("time_total_s", 0.0))
    row.train_seconds = float(sum(h.get("epoch_seconds", 0.0) for h in history))
    row.end = float(last.get("timestamp", 0.0))
    row.start = row.end - row.seconds
    # An epoch left unvalidated (--validate-every) carries an older epoch's score: no point.
    row.curve = [h.get(space.metric) if validated(h) else None for h in history]
    row.node_id, row.device, row.gpu_ids, row.cuda_visible_devices = (
        _text(last.get(k)) for k in ("node_id", "device", "gpu_ids", "cuda_visible_devices")
    )
    return row


def _text(value: Any) -> str:
    """A reported string as it was sent (missing, or NaN in a trial that never set it: '')."""
    return "" if value is None or value != value else str(value)


def _error(trial: Any) -> str:
    """The last line of a failed trial's traceback (the exception and its message)."""
    path = trial.error_file
    if not path or not Path(path).exists():
        return ""
    lines = [x for x in Path(path).read_text(errors="replace").splitlines() if x.strip()]
    return lines[-1].strip()[:300] if lines else "failed"


def _history(trial: Any) -> list[dict]:
    """A trial's reported results, one per epoch, read from its result.json.

    Tune's own reader (``ExperimentAnalysis.trial_dataframes``) drops a trial's whole history
    when one line does not parse, and a search killed while Tune was writing leaves such a line.
    """
    fs = trial.storage.storage_filesystem
    path = Path(trial.storage.trial_fs_path, "result.json").as_posix()
    try:
        with fs.open_input_stream(path) as f:
            text = f.readall().decode("utf-8", errors="replace")
    except (FileNotFoundError, OSError):
        return []
    return _dedup([r for line in text.splitlines() if (r := parse_result_line(line))])


def parse_result_line(line: str) -> dict | None:
    """One result.json record; a record cut short by a kill, and run into by the next, is skipped.

    The resumed search appends its first record right after the cut one, on the same line, so
    the line's complete record is the one that starts at the first ``{`` that parses to its end.
    """
    line = line.strip()
    decoder = json.JSONDecoder()
    for start, char in enumerate(line):
        if char != "{":
            continue
        try:
            record, end = decoder.raw_decode(line, start)
        except ValueError:
            continue
        # Ray stamps every record; a cut record's last nested dict (its config) is not one.
        if end == len(line) and isinstance(record, dict) and "training_iteration" in record:
            return record
    return None


def _dedup(history: list[dict]) -> list[dict]:
    """One record per epoch (a resumed trial may report an epoch twice); the latest wins."""
    by_epoch = {int(h.get("epoch", i)): h for i, h in enumerate(history)}
    return [by_epoch[k] for k in sorted(by_epoch)]


def slot_usage(
    rows: list[TrialRow], slots: int, wall: float, spans: dict[str, list[float]] | None = None
) -> dict[str, Any]:
    """How much of its trial slots a search spent outside vgd's training loop, per trial.

    A slot is one trial's share of the resources (``slots`` trials run at once). Idle slot time
    is ``slots × wall`` minus the seconds inside the training loop: Ray starting a worker and
    the trial's imports, the trainer's data set-up, reporting, gaps between trials, and slots
    left without work at the end. With the driver's timeline (``spans``: per trial the seconds
    at which it started, its first epoch began and it ended) the one-time start-up (each slot's
    wait for its first epoch) is split from the rest.
    """
    n = max(len(rows), 1)
    train = sum(r.train_seconds for r in rows)
    idle = slots * wall - train
    usage: dict[str, Any] = {
        "slots": slots,
        "wall_seconds": wall,
        "train_seconds": train,
        "idle_slot_seconds_per_trial": idle / n,
    }
    if spans:
        first_epochs = sorted(s[1] for s in spans.values() if not math.isnan(s[1]))[:slots]
        startup = sum(first_epochs)
        usage["startup_seconds_per_slot"] = startup / max(len(first_epochs), 1)
        usage["idle_slot_seconds_per_trial_after_startup"] = (idle - startup) / n
    return usage


def rank(rows: list[TrialRow], space: SearchSpace) -> list[TrialRow]:
    """Trials with a value, best first; validation loss breaks ties (e.g. several at 1.0).

    A metric judged where a trial ended compares like with like only among trials that ended
    where their schedule does: one cut short (by the time budget or the scheduler) is judged at
    an epoch that would not ship, with the speaker encoder before its probe is fitted, so it
    ranks after every trial that completed."""
    scored = [r for r in rows if r.value is not None and r.status != "failed"]
    sign = -1 if space.mode == "max" else 1

    def key(r: TrialRow) -> tuple:
        return (judged_short(r, space), sign * r.value, r.metrics.get("val_loss", 0.0))

    return sorted(scored, key=key)


def judged_short(row: TrialRow, space: SearchSpace) -> bool:
    """Whether a trial judged at its last epoch stopped before its schedule's end."""
    return space.ranks_last_epoch and row.status != "completed"


def trials_csv(rows: list[TrialRow], space: SearchSpace) -> str:
    """One row per trial: config, status, best metrics, epochs, seconds."""
    param_cols = [p.path for p in space.params]
    metric_cols = sorted({k for r in rows for k in r.metrics} - {space.metric})
    cols = [
        "trial_id",
        "status",
        space.metric,
        "epochs",
        "best_epoch",
        "seconds",
        "train_seconds",
        "node_id",
        "device",
        "gpu_ids",
        "cuda_visible_devices",
        *param_cols,
        *metric_cols,
        "failures",
        "error",
    ]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(
            {
                "trial_id": r.trial_id,
                "status": r.status,
                space.metric: _fmt(r.value),
                "epochs": r.epochs,
                "best_epoch": r.best_epoch,
                "seconds": f"{r.seconds:.2f}",
                "train_seconds": f"{r.train_seconds:.2f}",
                "node_id": r.node_id,
                "device": r.device,
                "gpu_ids": r.gpu_ids,
                "cuda_visible_devices": r.cuda_visible_devices,
                "error": r.error,
                "failures": r.failures,
                **{k: r.params.get(k, "") for k in param_cols},
                **{k: _fmt(r.metrics.get(k)) for k in metric_cols},
            }
        )
    return buf.getvalue()


def _fmt(v: Any) -> Any:
    return "" if v is None else f"{v:.6g}" if isinstance(v, float) else v


def top_k_table(rows: list[TrialRow], space: SearchSpace, k: int) -> str:
    """The k best trials with their searched values, as printable text (± spread over folds)."""
    ranked = rank(rows, space)[:k]
    if not ranked:
        return "no trial reported a result"
    lines = [f"{'#':>2} {'trial':<10} {space.metric:>22} {'val_loss':>9} {'epochs':>6}  params"]
    for i, r in enumerate(ranked, 1):
        params = ", ".join(f"{p}={_short(v)}" for p, v in r.params.items())
        loss = r.metrics.get("val_loss", float("nan"))
        spread = r.metrics.get(f"{spread_key(space.metric)}_std")  # at the judged epoch
        value = _with_spread(r.value, spread)
        lines.append(f"{i:>2} {r.trial_id:<10} {value:>22} {loss:>9.4f} {r.epochs:>6}  {params}")
        lines += [f"{'':14}{line}" for line in _per_corpus(r)]
    return "\n".join(lines)


def spread_key(metric: str) -> str:
    """The per-epoch score a ranking metric is made of (its ``_std`` is the spread over folds)."""
    for prefix in ("best_", "last3_", "last_"):
        metric = metric.removeprefix(prefix)
    return metric


def _with_spread(value: float, spread: float | None) -> str:
    return f"{value:.4f}" + (f" ± {spread:.4f}" if spread is not None else "")


def _per_corpus(row: TrialRow) -> list[str]:
    """Each corpus's validation balanced accuracy (± spread over folds) at the epoch the trial
    is judged at (its best, or its last for a ``last3_`` or ``last_`` metric), which
    ``row.metrics`` holds."""
    prefix = "val_balanced_accuracy@"
    corpora = sorted(
        k[len(prefix) :]
        for k in row.metrics
        if k.startswith(prefix) and not k.endswith(("_std", "_min", "_max"))
    )
    return [
        f"{c}: {_with_spread(row.metrics[prefix + c], row.metrics.get(f'{prefix}{c}_std'))}"
        for c in corpora
    ]


def _short(v: Any) -> str:
    """A parameter as people read it: 5813 Hz, not 5.81e+03; 0.00123, not 0.0012345678."""
    if not isinstance(v, float):
        return str(v)
    return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def best_config(best: TrialRow, base: TrainConfig) -> TrainConfig:
    """The winning training recipe (no run settings: it means the same on any machine)."""
    return apply_overrides(base, best.params)


def write_results(
    rows: list[TrialRow],
    space: SearchSpace,
    base: TrainConfig,
    out_dir: Path,
    summary: dict[str, Any],
) -> dict[str, Path]:
    """Write every artefact of the search into ``out_dir``; returns their paths."""
    from search import figures
    from vgd.train import checkpoint_from_state

    paths = {
        "trials": out_dir / "trials.csv",
        "summary": out_dir / "summary.json",
        "figure": out_dir / "search.png",
    }
    atomic_write_text(paths["trials"], trials_csv(rows, space))
    ranked = rank(rows, space)
    if ranked:
        best = ranked[0]
        if judged_short(best, space):
            log.warning(
                "no trial reached its last epoch (the best stopped at epoch %d): %s is judged at "
                "an epoch that would not ship; raise the time budget",
                best.epochs,
                space.metric,
            )
        paths["best_config"] = out_dir / "best_config.yaml"
        save_config(best_config(best, base), paths["best_config"])
        if best.checkpoint and (Path(best.checkpoint) / "state.pt").exists():  # not with --cv
            paths["best_model"] = checkpoint_from_state(
                Path(best.checkpoint) / "state.pt", out_dir / "best_model.pt"
            )
        summary["best"] = {
            "trial_id": best.trial_id,
            space.metric: best.value,
            "params": best.params,
            "metrics": best.metrics,
            "best_epoch": best.best_epoch,
        }
    figures.search_figure(rows, space, paths["figure"])
    importances = importance(rows, space)
    summary["importances"] = importances
    note = f"fewer than {MIN_TRIALS_FOR_IMPORTANCE} scored trials: no importances"
    paths["importances"] = figures.importance_figure(importances, out_dir / "importances.png", note)
    atomic_write_json(paths["summary"], summary)
    return paths


def importance(rows: list[TrialRow], space: SearchSpace) -> dict[str, float]:
    """Optuna's parameter importances over the trials with a value (empty when too few)."""
    import optuna

    scored = [r for r in rows if r.value is not None and r.status != "failed"]
    if len(scored) < MIN_TRIALS_FOR_IMPORTANCE:
        return {}
    dists = {p.path: _distribution(p) for p in space.params}
    study = optuna.create_study(direction="maximize" if space.mode == "max" else "minimize")
    for r in scored:
        params = {k: v for k, v in r.params.items() if k in dists}
        study.add_trial(
            optuna.trial.create_trial(
                params=params, distributions={k: dists[k] for k in params}, value=float(r.value)
            )
        )
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError) as e:
        log.warning("parameter importances not computed: %s", e)
        return {}


def _distribution(p):
    import optuna.distributions as d

    if p.kind == "categorical":
        return d.CategoricalDistribution(list(p.choices))
    if p.kind in ("int", "logint"):
        return d.IntDistribution(
            int(p.low), int(p.high), log=p.kind == "logint", step=int(p.step or 1)
        )
    return d.FloatDistribution(p.low, p.high, log=p.kind == "loguniform", step=p.step)


def read_summary(out_dir: Path) -> dict[str, Any]:
    return json.loads((out_dir / "summary.json").read_text())
