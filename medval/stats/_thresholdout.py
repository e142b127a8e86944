"""Thresholdout: a reusable holdout for repeated gating.

Every time a gate re-scores a new candidate on the same locked test set,
the verdict leaks a little about that test set, and a team that keeps what
the gate liked slowly fits the test set itself. Thresholdout (Dwork et al.
2015) answers each query with the candidate's *reference* value (its
training or internal-validation estimate) unless the test-set value differs
from it by more than a noisy threshold; only then does it reveal the
test-set value, with Laplace noise, and spend one unit of a budget of
overfitting detections. A query that does not overfit reveals a single
bit about the test set, so many can be answered.

The algorithm is Fig. 1 of Dwork, Feldman, Hardt, Pitassi, Reingold & Roth
(NIPS 2015): the threshold ``T`` is perturbed by ``gamma ~ Lap(2 sigma)``,
redrawn after each detection; each comparison adds ``eta ~ Lap(4 sigma)``;
a detected query is answered ``holdout + xi`` with ``xi ~ Lap(sigma)``;
with the budget spent the mechanism refuses. It is ``2B / (sigma n)``
-differentially private with respect to the test set (their Lemma 23),
which is what bounds adaptive overfitting (``thresholdout_bound``).

Randomness. In production the noise must not be reproducible by the
analyst, otherwise the holdout is exposed again: the gate draws it from
``numpy.random.default_rng(secrets.randbits(128))`` and keeps the state
(``to_dict``) where the analyst cannot read it, since the current threshold
offset is part of it. ``random_state`` exists for tests and simulations.

References
----------
Dwork C, Feldman V, Hardt M, Pitassi T, Reingold O, Roth A. The reusable
holdout: preserving validity in adaptive data analysis. Science
2015;349(6248):636-638.
Dwork C, Feldman V, Hardt M, Pitassi T, Reingold O, Roth A. Generalization
in adaptive data analysis and holdout reuse. NIPS 2015 (arXiv:1506.02629),
Fig. 1, Lemma 23, Theorem 25.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from medval._errors import BudgetExhaustedError, InputError
from medval.stats._validate import normalise_random_state

__all__ = ["Thresholdout", "ThresholdoutAnswer"]

_STATE_KEYS = frozenset(
    {
        "method",
        "threshold",
        "noise_scale",
        "budget",
        "budget_left",
        "n_queries",
        "threshold_offset",
        "cache",
    }
)


@dataclasses.dataclass(frozen=True)
class ThresholdoutAnswer:
    """One answer of :class:`Thresholdout`.

    Attributes
    ----------
    value : float
        The answer to report: the reference value when the test set agrees
        with it, else the test-set value plus Laplace noise (which may fall
        slightly outside [0, 1]).
    overfitting_detected : bool
        Whether this query spent one unit of budget.
    budget_left : int
        Overfitting detections still allowed after this answer.
    n_queries : int
        Queries answered so far, this one included (cached repeats not counted).
    """

    value: float
    overfitting_detected: bool
    budget_left: int
    n_queries: int


def _check_unit(value: float, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number in [0, 1]; got {value!r}.") from None
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise InputError(
            f"{name} must be a finite number in [0, 1] (a proportion, sensitivity, "
            f"AUROC...); got {value!r}. Rescale the metric to [0, 1] first."
        )
    return v


def _check_positive(value: float, name: str, *, zero_ok: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number; got {value!r}.") from None
    if not math.isfinite(v) or v < 0.0 or (v == 0.0 and not zero_ok):
        bound = "non-negative" if zero_ok else "positive"
        raise InputError(f"{name} must be a finite {bound} number; got {value!r}.")
    return v


def _check_count(value: int, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an int >= {minimum}; got {value!r}.")
    return int(value)


class Thresholdout:
    """Reusable holdout: answer adaptively chosen queries with a bounded overfitting budget.

    Parameters
    ----------
    threshold : float
        ``T``: how far (on the metric's [0, 1] scale) the test-set value may
        sit from the reference value before it counts as overfitting. The
        paper's experiment used ``T = 4 / sqrt(n)`` (0.04 at n = 10,000);
        ``thresholdout_parameters`` gives the value of the proof.
    noise_scale : float
        ``sigma``: threshold noise ``Lap(2 sigma)``, comparison noise
        ``Lap(4 sigma)``, answer noise ``Lap(sigma)``. The experiment used
        ``1 / sqrt(n)`` (0.01).
    budget : int
        ``B``: overfitting detections allowed before the mechanism refuses.
    random_state : int, numpy.random.Generator or None
        Source of the noise; for tests only (see the module notes).

    Notes
    -----
    Assumptions behind the guarantee: the analyst sees nothing of the test
    set but these answers; the reference value does not depend on the test
    set; a repeated identical query gets the cached answer (pass ``key``),
    otherwise fresh noise on each repeat would average out.

    References
    ----------
    Dwork et al., NIPS 2015 (arXiv:1506.02629), Fig. 1; Science 349:636 (2015).
    """

    def __init__(
        self,
        threshold: float,
        noise_scale: float,
        budget: int,
        *,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.threshold = _check_positive(threshold, "threshold", zero_ok=True)
        self.noise_scale = _check_positive(noise_scale, "noise_scale")
        self.budget = _check_count(budget, "budget", minimum=1)
        self._rng, _ = normalise_random_state(random_state)
        self.budget_left_ = self.budget
        self.n_queries_ = 0
        self.threshold_offset_ = self._laplace(2.0)
        self._cache: dict[str, tuple[float, float, float, bool]] = {}

    def _laplace(self, multiple: float) -> float:
        return float(self._rng.laplace(0.0, multiple * self.noise_scale))

    def answer(
        self, holdout_value: float, reference_value: float, *, key: str | None = None
    ) -> ThresholdoutAnswer:
        """Answer one query.

        Parameters
        ----------
        holdout_value : float
            The metric on the locked test set, in [0, 1].
        reference_value : float
            The same metric on data the analyst owns (training or internal
            validation), in [0, 1]; it must not depend on the test set.
        key : str, optional
            Identifies the query (e.g. model hash + criterion). A key seen
            before returns its first answer without drawing noise or
            spending budget; the values must then be the same.

        Returns
        -------
        ThresholdoutAnswer

        Raises
        ------
        BudgetExhaustedError
            When ``budget`` detections have been spent.
        InputError
            For values outside [0, 1], or a cached key with other values.
        """
        h = _check_unit(holdout_value, "holdout_value")
        r = _check_unit(reference_value, "reference_value")
        if key is not None and key in self._cache:
            h0, r0, value, detected = self._cache[key]
            if (h0, r0) != (h, r):
                raise InputError(
                    f"Query {key!r} was answered before for holdout={h0}, reference={r0}; "
                    f"got holdout={h}, reference={r}. A key must name one query; "
                    "use a new key for a new model or metric."
                )
            return ThresholdoutAnswer(value, detected, self.budget_left_, self.n_queries_)
        if self.budget_left_ < 1:
            raise BudgetExhaustedError(
                f"The reusable holdout has spent its budget of {self.budget} overfitting "
                f"detections after {self.n_queries_} queries; it refuses further answers, "
                "since each one would leak the test set beyond the proven bound. "
                "Gate on a fresh test set (and start a new Thresholdout)."
            )
        self.n_queries_ += 1
        detected = abs(h - r) > self.threshold + self.threshold_offset_ + self._laplace(4.0)
        if detected:
            value = h + self._laplace(1.0)
            self.threshold_offset_ = self._laplace(2.0)
            self.budget_left_ -= 1
        else:
            value = r
        if key is not None:
            self._cache[key] = (h, r, value, detected)
        return ThresholdoutAnswer(value, detected, self.budget_left_, self.n_queries_)

    def to_dict(self) -> dict[str, Any]:
        """The state to keep between runs (JSON-ready; keep it from the analyst).

        The generator's state is not included: production draws fresh
        unpredictable noise after each restore.
        """
        return {
            "method": "thresholdout",
            "threshold": self.threshold,
            "noise_scale": self.noise_scale,
            "budget": self.budget,
            "budget_left": self.budget_left_,
            "n_queries": self.n_queries_,
            "threshold_offset": self.threshold_offset_,
            "cache": {k: list(v) for k, v in self._cache.items()},
        }

    @classmethod
    def from_dict(
        cls,
        state: dict[str, Any],
        *,
        random_state: int | np.random.Generator | None = None,
    ) -> Thresholdout:
        """Restore a mechanism saved with :meth:`to_dict`.

        Raises
        ------
        InputError
            For missing or unknown keys, or inconsistent counts.
        """
        if not isinstance(state, dict) or set(state) != _STATE_KEYS:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise InputError(
                f"A Thresholdout state must have the keys {sorted(_STATE_KEYS)}; got {got}. "
                "Pass the dict written by Thresholdout.to_dict()."
            )
        if state["method"] != "thresholdout":
            raise InputError(f"state['method'] must be 'thresholdout'; got {state['method']!r}.")
        # Not through __init__: that would draw a new threshold offset.
        self = cls.__new__(cls)
        self.threshold = _check_positive(state["threshold"], "threshold", zero_ok=True)
        self.noise_scale = _check_positive(state["noise_scale"], "noise_scale")
        self.budget = _check_count(state["budget"], "budget", minimum=1)
        self._rng, _ = normalise_random_state(random_state)
        left = _check_count(state["budget_left"], "state['budget_left']", minimum=0)
        if left > self.budget:
            raise InputError(
                f"state['budget_left'] = {left} exceeds the budget {self.budget}; "
                "the state was edited or belongs to another mechanism."
            )
        self.budget_left_ = left
        self.n_queries_ = _check_count(state["n_queries"], "state['n_queries']", minimum=0)
        offset = float(state["threshold_offset"])
        if not math.isfinite(offset):
            raise InputError(f"state['threshold_offset'] must be finite; got {offset!r}.")
        self.threshold_offset_ = offset
        self._cache = {
            str(k): (float(v[0]), float(v[1]), float(v[2]), bool(v[3]))
            for k, v in state["cache"].items()
        }
        return self

    def __repr__(self) -> str:
        return (
            f"Thresholdout(threshold={self.threshold}, noise_scale={self.noise_scale}, "
            f"budget={self.budget}, budget_left={self.budget_left_}, "
            f"n_queries={self.n_queries_})"
        )
