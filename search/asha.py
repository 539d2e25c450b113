"""ASHA with a margin: a rung stops a trial only when it trails the rung's cutoff by more than
``margin``.

Ray's ASHA stops a trial at a rung when its score is below the rung's percentile of the scores
recorded there, by any amount. With two trials at once and a reduction factor of 2, the second
trial at a rung is judged against the first alone, and a cross-validated score that swings by a
fold's spread decides on noise. A margin of about the spread of the score keeps a trial that is
level with the cutoff within that noise; 0 is Ray's ASHA.
"""

from __future__ import annotations

from ray.tune.schedulers.async_hyperband import AsyncHyperBandScheduler, _Bracket


class _MarginBracket(_Bracket):
    """A bracket whose cutoff is lowered by the margin (scores are maximised inside Ray's ASHA:
    a minimised metric arrives negated, so lowering is lenient in both modes)."""

    def __init__(self, bracket: _Bracket, margin: float):
        self.__dict__.update(bracket.__dict__)
        self.margin = margin

    def cutoff(self, recorded):
        cutoff = super().cutoff(recorded)
        return None if cutoff is None else cutoff - self.margin


class MarginASHAScheduler(AsyncHyperBandScheduler):
    """Ray's ASHA (AsyncHyperBandScheduler) whose rungs forgive a shortfall of up to ``margin``."""

    def __init__(self, *, margin: float, **kwargs):
        if margin < 0:
            raise ValueError(f"margin must be at least 0, not {margin}")
        super().__init__(**kwargs)
        self.margin = margin
        self._brackets = [_MarginBracket(b, margin) for b in self._brackets]
