"""Replay a finished search's ASHA rungs from what its trials reported: at each rung, which trial
was judged against what cutoff, and whether it was stopped, with one margin or several.

A search's trials stopped early leave no curve beyond their rung, so a replay with a smaller
margin than the search's shows which trials that margin would have stopped (and stops feeding
them), not what they would have scored; one with a larger margin marks a trial the search
stopped as kept, with nothing after its rung. Events are fed in the order Tune recorded them.
``--curves`` prints instead each trial's score at the epochs named, the curves a rung would cut.

    python scripts/replay_rungs.py results/release/search --margin 0.007 0
    python scripts/replay_rungs.py results/release/search --curves 1 8 16 60 \
        --metric val_macro_balanced_accuracy
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from search.results import parse_result_line  # noqa: E402
from search.space import SearchSpace, load_space  # noqa: E402
from vgd.config import TrainConfig, apply_overrides  # noqa: E402


@dataclass(frozen=True)
class Event:
    """One epoch a trial reported: when, which trial, the epoch and the ranked score."""

    timestamp: float
    trial_id: str
    epoch: int
    value: float


@dataclass(frozen=True)
class Decision:
    """A rung's verdict on one trial: its score, the rung's cutoff before the margin, stopped."""

    epoch: int
    trial_id: str
    value: float
    cutoff: float | None
    stopped: bool


def read_events(search_dir: Path, metric: str) -> list[Event]:
    """Every epoch every trial of the search reported, in the order Tune recorded them.

    Tune stamps a record to the second; a trial's start (its earliest stamp less the seconds it
    had run) plus its running seconds orders two trials' records within one second.
    """
    events = []
    for path in sorted(search_dir.rglob("result.json")):
        records = [
            r
            for line in path.read_text(errors="replace").splitlines()
            if (r := parse_result_line(line)) and metric in r
        ]
        if not records:
            continue
        start = min(float(r["timestamp"]) - float(r.get("time_total_s", 0)) for r in records)
        events += [
            Event(
                start + float(r.get("time_total_s", 0)),
                str(r["trial_id"]),
                int(r["epoch"]),
                float(r[metric]),
            )
            for r in records
        ]
    return sorted(events, key=lambda e: (e.timestamp, e.trial_id, e.epoch))


def replay(
    events: list[Event], space: SearchSpace, base: TrainConfig, margin: float
) -> list[Decision]:
    """Feed the events to the search's scheduler with ``margin``; every rung decision it made."""
    from types import SimpleNamespace

    from ray.tune.schedulers import TrialScheduler

    from search.harness import make_scheduler

    space = dataclasses.replace(space, margin=margin)
    sched = make_scheduler(space, base, SimpleNamespace(scheduler="asha"))
    sched.set_search_properties(space.metric, space.mode)
    sign = 1.0 if space.mode == "max" else -1.0
    trials: dict[str, SimpleNamespace] = {}
    stopped: set[str] = set()
    decisions = []
    for e in events:
        if e.trial_id in stopped:
            continue
        if e.trial_id not in trials:
            trials[e.trial_id] = SimpleNamespace(trial_id=e.trial_id)
            sched.on_trial_add(None, trials[e.trial_id])
        rung = _rung_reached(sched, e)
        cutoff = None
        if rung:  # the rung's own cutoff, before the margin lowers it
            cutoff = sign * (float(sched._brackets[0].cutoff(rung)) + margin)
        result = {"epoch": e.epoch, space.metric: e.value}
        action = sched.on_trial_result(None, trials[e.trial_id], result)
        if rung is not None:
            stop = action == TrialScheduler.STOP
            decisions.append(Decision(e.epoch, e.trial_id, e.value, cutoff, stop))
        if action == TrialScheduler.STOP:
            stopped.add(e.trial_id)
    return decisions


def _rung_reached(sched, event: Event) -> dict | None:
    """The scores recorded at the rung this event reaches first, or None if it reaches none."""
    for milestone, recorded in sched._brackets[0]._rungs:
        if event.epoch >= milestone and event.trial_id not in recorded:
            return dict(recorded)
        if event.epoch >= milestone:
            return None
    return None


def decision_lines(decisions: list[Decision], margin: float) -> list[str]:
    lines = [f"margin {margin:g}"]
    for d in decisions:
        if d.cutoff is None:
            verdict = "first at its rung: kept"
        else:
            verdict = f"cutoff {d.cutoff:.4f}, {'STOPPED' if d.stopped else 'kept'}"
        lines.append(f"  epoch {d.epoch:>3}  {d.trial_id:<10} {d.value:.4f}  {verdict}")
    return lines


def curve_lines(events: list[Event], epochs: list[int]) -> list[str]:
    """One row per trial (in the order they first reported): its score at each of ``epochs``,
    blank where it never reached one."""
    scores: dict[str, dict[int, float]] = {}
    for e in events:
        scores.setdefault(e.trial_id, {})[e.epoch] = e.value
    head = "trial     " + "".join(f"{f'ep {n}':>8}" for n in epochs)
    rows = [
        f"{trial:<10}" + "".join(f"{got[n]:>8.4f}" if n in got else " " * 8 for n in epochs)
        for trial, got in scores.items()
    ]
    return [head, *rows]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("search_dir", type=Path, help="a search's results folder (its summary.json)")
    p.add_argument("--margin", type=float, nargs="+", help="margins to replay (the space's)")
    p.add_argument("--metric", help="rank by another reported score (the space's)")
    p.add_argument("--curves", type=int, nargs="+", help="print each trial's score at these epochs")
    args = p.parse_args(argv)
    summary = json.loads((args.search_dir / "summary.json").read_text())
    space = load_space(summary["space"])
    if args.metric:
        space = dataclasses.replace(space, metric=args.metric)
    base = apply_overrides(TrainConfig(), space.base)
    events = read_events(args.search_dir, space.metric)
    if not events:
        print(f"{args.search_dir}: no trial reported {space.metric}", file=sys.stderr)
        return 1
    trials = len({e.trial_id for e in events})
    if args.curves:
        print(f"{space.name}: {space.metric}, {trials} trials")
        print("\n".join(curve_lines(events, args.curves)))
        return 0
    print(
        f"{space.name}: {space.metric}, rungs from epoch {space.grace_period}, "
        f"reduction factor {space.reduction_factor:g}, {trials} trials"
    )
    for margin in args.margin or [space.margin]:
        print("\n".join(decision_lines(replay(events, space, base, margin), margin)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
