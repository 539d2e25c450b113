"""ASHA with a margin: a rung keeps a trial level with its cutoff within the margin."""

import dataclasses
import pickle
from types import SimpleNamespace

import pytest
from ray.tune.schedulers import TrialScheduler

from search.asha import MarginASHAScheduler
from search.harness import check_validation, make_scheduler
from search.space import load_space
from vgd.config import ConfigError, TrainConfig, apply_overrides
from vgd.params import SearchConfig

METRIC = "last3_val_macro_balanced_accuracy"


def scheduler(margin: float, mode: str = "max") -> MarginASHAScheduler:
    sched = MarginASHAScheduler(
        time_attr="epoch", max_t=20, grace_period=8, reduction_factor=2, margin=margin
    )
    sched.set_search_properties(METRIC, mode)
    return sched


def at_rung(sched, scores: list[float], epoch: int = 8) -> list[str]:
    """Report each trial's score at ``epoch`` in turn; what the scheduler told each."""
    actions = []
    for i, score in enumerate(scores):
        trial = SimpleNamespace(trial_id=f"t{i}")
        sched.on_trial_add(None, trial)
        actions.append(sched.on_trial_result(None, trial, {"epoch": epoch, METRIC: score}))
    return actions


CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP


@pytest.mark.parametrize(
    "margin,second,expected",
    [
        (0.0, 0.9669, STOP),  # Ray's ASHA: behind the first trial by any amount
        (0.007, 0.9669, CONTINUE),  # within the margin of the first trial
        (0.007, 0.9601, STOP),  # behind by more than the margin
        (0.007, 0.9700, CONTINUE),
    ],
)
def test_a_rung_stops_a_trial_only_beyond_the_margin(margin, second, expected):
    assert at_rung(scheduler(margin), [0.9672, second]) == [CONTINUE, expected]


def test_the_margin_is_lenient_for_a_minimised_metric_too():
    assert at_rung(scheduler(0.05, "min"), [0.30, 0.34]) == [CONTINUE, CONTINUE]
    assert at_rung(scheduler(0.05, "min"), [0.30, 0.36]) == [CONTINUE, STOP]


def test_the_margin_survives_the_schedulers_checkpoint(tmp_path):
    sched = scheduler(0.007)
    at_rung(sched, [0.9672])
    sched.save(str(tmp_path / "sched.pkl"))
    restored = scheduler(0.0)
    restored.restore(str(tmp_path / "sched.pkl"))
    assert restored.margin == 0.007
    trial = SimpleNamespace(trial_id="late")
    restored.on_trial_add(None, trial)
    assert restored.on_trial_result(None, trial, {"epoch": 8, METRIC: 0.9669}) == CONTINUE
    pickle.dumps(restored)


def test_a_negative_margin_is_refused():
    with pytest.raises(ValueError, match="margin"):
        MarginASHAScheduler(time_attr="epoch", max_t=20, grace_period=8, margin=-0.01)


def test_the_search_builds_its_scheduler_from_the_space():
    space = load_space("two_corpus")
    base = apply_overrides(TrainConfig(), space.base)
    sched = make_scheduler(space, base, SimpleNamespace(scheduler="asha"))
    assert isinstance(sched, MarginASHAScheduler) and sched.margin == space.margin > 0
    assert sched._max_t == base.optim.epochs
    rungs, epoch = [], space.grace_period
    while epoch < base.optim.epochs:
        rungs.insert(0, epoch)
        epoch = int(epoch * space.reduction_factor)
    assert rungs and [milestone for milestone, _ in sched._brackets[0]._rungs] == rungs


def test_a_validation_cadence_that_skips_a_rung_or_the_epoch_choice_is_refused():
    space = load_space("two_corpus")  # select=last, one rung at epoch 40 of 60
    base = apply_overrides(TrainConfig(), space.base)
    check_validation(space, base, SearchConfig(validate_every=10))
    check_validation(space, base, SearchConfig(validate_every=15, scheduler="none"))
    with pytest.raises(ConfigError, match="rung at epoch 40"):
        check_validation(space, base, SearchConfig(validate_every=15))
    best = apply_overrides(base, {"optim.select": "best"})
    with pytest.raises(ConfigError, match=r"optim\.select=last"):
        check_validation(space, best, SearchConfig(validate_every=10, scheduler="none"))
    with pytest.raises(ConfigError, match="validate_every"):
        SearchConfig(validate_every=0)
    ranked_by_best = dataclasses.replace(space, metric="best_val_macro_balanced_accuracy")
    with pytest.raises(ConfigError, match="last_ or last3_ metric"):
        check_validation(ranked_by_best, base, SearchConfig(validate_every=10, scheduler="none"))
