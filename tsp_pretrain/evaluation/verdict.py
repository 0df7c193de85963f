"""Reading trained minus initial: one word per metric, and a loud warning when training hurt.

Fine-tuning with bad learning rates can leave an encoder that separates actions from background
worse than the one it started from (a user's run: within-video AUC 0.93 -> 0.55, average mAP
0.41 -> 0.03) while every stage succeeds. The evaluate and localize stages therefore log each
paired difference with its number of videos and a word, and warn whenever the trained encoder's
point estimate is below the initial one's, even when the interval cannot tell them apart: that
is the cheapest moment to look at the training params (``python -m tsp_pretrain.experiments
verdict`` reads the same numbers later). The word comes from
:func:`~tsp_pretrain.evaluation.bootstrap.difference_sign`, which gives none below
:data:`~tsp_pretrain.evaluation.bootstrap.MIN_VIDEOS_FOR_VERDICT` videos.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from tsp_pretrain.evaluation.bootstrap import Sign, difference_sign, too_few_videos
from tsp_pretrain.training.health import HEALTH_BLOCK, keys_to_check

log = logging.getLogger(__name__)

#: The word for a trained - initial difference, per sign of its interval.
WORDS: dict[Sign, str] = {
    "above": "helped",
    "below": "hurt",
    "contains": "no clear difference",
    "too_few": "too few videos to tell",
}


@dataclass(frozen=True)
class Difference:
    """One metric of both encoders and their paired difference trained - initial (95%)."""

    label: str
    trained: float
    initial: float
    mean: float
    low: float
    high: float
    num_videos: int

    @property
    def sign(self) -> Sign:
        return difference_sign(self.low, self.high, self.num_videos)

    @property
    def word(self) -> str:
        """helped / hurt / no clear difference / too few videos to tell."""
        return WORDS[self.sign]

    @property
    def interval(self) -> str:
        return f"{self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"

    def explained(self) -> str:
        """The word, with the minimum spelled out when there are too few videos."""
        return too_few_videos(self.num_videos) if self.sign == "too_few" else self.word


def describe(difference: Difference) -> str:
    """``within-video AUC: trained - initial +0.0831 [+0.0452, +0.1200] over 21 videos:
    helped`` (one stage log line)."""
    d = difference
    return f"{d.label}: trained - initial {d.interval} over {d.num_videos} videos: {d.explained()}"


def warn_if_worse_than_initial(difference: Difference) -> bool:
    """A loud WARNING when the trained encoder's value is below the initial one's, naming the
    training params to look at; True if it warned."""
    d = difference
    if d.trained >= d.initial:
        return False
    bar = "=" * 78
    log.warning(
        "\n%s\nTHE TRAINED ENCODER IS WORSE THAN THE INITIAL ONE: %s %.4f < %.4f\n"
        "  trained - initial %s over %d videos (%s)\n"
        "Fine-tuning made these features worse. Look at %s, and at the %r block of "
        "metrics/train/metrics.json.\n%s",
        bar,
        d.label,
        d.trained,
        d.initial,
        d.interval,
        d.num_videos,
        d.explained(),
        keys_to_check("train"),
        HEALTH_BLOCK,
        bar,
    )
    return True


def log_differences(differences: Sequence[Difference]) -> None:
    """What the evaluate and localize stages log about trained - initial: a line per metric,
    and the warning for each metric the trained encoder is worse on."""
    for difference in differences:
        log.info("%s", describe(difference))
    for difference in differences:
        warn_if_worse_than_initial(difference)
