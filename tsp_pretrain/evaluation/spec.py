"""What every probe of a comparison shares, decided once from the params.

Both encoders, and both stages that probe them (``evaluate``: separability; ``localize``: the
localization read-out), must be fit on the same training videos, scored on the same validation
videos, label clips by the same rule and draw the same bootstrap resamples; otherwise a
difference between them would measure the set-up, not the encoders. :class:`EvaluationSpec`
holds those choices, built once by :meth:`EvaluationSpec.from_params` and passed whole. The
defaults of the values that are params live in :mod:`tsp_pretrain.config` only.
"""

from __future__ import annotations

from dataclasses import dataclass

from tsp_pretrain.config import Params
from tsp_pretrain.evaluation.probes import MAX_ITER


@dataclass(frozen=True)
class EvaluationSpec:
    """How an encoder's clip features are probed and its intervals drawn.

    ``train_subset`` / ``valid_subset``: the videos the probes are fit on and scored on (the
    ``subset`` column of the videos table). ``fg_threshold``: the share of a clip that
    foreground segments must cover for it to count as foreground (:mod:`.clip_labels`).
    ``seed``: the probes' fits and the bootstrap draws. ``n_bootstrap``: resamples of the
    validation videos behind every interval. ``max_iter``: the probes' solver iterations (a
    library constant, not a param).
    """

    train_subset: str
    valid_subset: str
    fg_threshold: float
    seed: int
    n_bootstrap: int
    max_iter: int = MAX_ITER

    @classmethod
    def from_params(cls, params: Params, dataset: str = "target") -> EvaluationSpec:
        """The spec of the ``evaluate`` and ``localize`` stages: ``datasets.<dataset>``'s
        subsets, ``evaluate.fg_threshold``, ``evaluate.n_bootstrap`` and ``seed``."""
        subsets = params.dataset(dataset)
        return cls(
            train_subset=subsets.train_subset,
            valid_subset=subsets.valid_subset,
            fg_threshold=params.evaluate.fg_threshold,
            seed=params.seed,
            n_bootstrap=params.evaluate.n_bootstrap,
        )
