"""Split and Mondrian conformal classification: :class:`ConformalClassifier`."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError, NotCalibratedError
from medval.conformal._checks import (
    FloatArray,
    batches,
    case_uniforms,
    check_confidence_level,
    check_groups,
    check_labels,
    check_probabilities,
    conformal_rank,
    min_calibration_size,
)
from medval.conformal._quantile import conformal_quantile
from medval.conformal._raps import RAPS_LAMBDA_GRID, tune_raps
from medval.conformal._scores import EPSILON, Regularization, get_score
from medval.stats import normalise_random_state

__all__ = ["RAPS_LAMBDA_GRID", "ConformalClassifier"]

_POLICIES = ("error", "marginal")


class ConformalClassifier:
    """Split-conformal prediction sets from any classifier's probabilities.

    Marginal, group-conditional (Mondrian, one threshold per group of a
    Cohort column) or class-conditional (one threshold per label)
    calibration of the LAC, APS, RAPS or top-k conformity scores. For
    exchangeable calibration and test cases, the set contains the true label
    with probability at least ``confidence_level`` (within each group for
    Mondrian calibration), and at most ``confidence_level + 1/(n + 1)`` for
    the randomised scores with continuous scores (Vovk et al. 2005; Romano et
    al. 2020; Angelopoulos & Bates 2023).

    The scores and set rules are MAPIE 1.6's (see :mod:`medval.conformal._scores`),
    computed batched in the input dtype; ``tests/conformal`` check the sets
    against MAPIE's ``SplitConformalClassifier`` on a prefit adapter
    (:func:`medval.conformal.mapie_prediction_sets` runs that cross-check on
    any data).

    Parameters
    ----------
    method : {"aps", "raps", "lac", "topk"}, default "aps"
        Conformity score, from :data:`medval.conformal.SCORES`.
    confidence_level : float, default 0.9
        Target coverage.
    groups : None or "class", default None
        ``"class"`` calibrates one threshold per label (class-conditional
        coverage; sets ``{j : s(x, j) <= q_j}``). With ``None`` the
        calibration is marginal, or Mondrian when ``groups`` are passed to
        :meth:`calibrate`.
    randomized : bool, optional
        Randomised APS/RAPS (the default for them): calibration scores
        ``C(y) - U p_y`` and the last label kept with probability ``V``,
        which gives the exact upper coverage bound and may give empty sets.
        ``False`` uses the deterministic score ``C(y)`` and keeps the label
        that crosses the threshold, so it over-covers: coverage stays at or
        above the level but the ``+ 1/(n + 1)`` upper bound is lost, and with
        over-confident networks the sets can grow large (at 0.9 on the
        CIFAR-100 DenseNet record: APS about 0.998 coverage, RAPS about
        0.93). MAPIE's ``include_last_label=True``; note MAPIE randomises the
        calibration scores even then. Not available for LAC and top-k.
    include_last_label : bool, default True
        For non-randomised APS/RAPS, ``False`` drops the label that crosses
        the threshold (MAPIE's ``include_last_label=False``; no guarantee).
    lambda_reg, k_reg : float, optional
        RAPS penalty ``lambda_reg * max(0, rank - k_reg)``. When either is
        None it is tuned, as the RAPS paper does, on a random
        ``raps_tuning_fraction`` of the calibration cases, which are then
        left out of the threshold so the guarantee is untouched: ``k_reg`` is
        the conformal quantile of the true label's 0-based rank, plus one;
        ``lambda_reg`` the value in :data:`RAPS_LAMBDA_GRID` whose sets are
        smallest on average (the paper's size-optimal rule, App. E). A given
        value is used as is.
    raps_tuning_fraction : float, default 0.2
        Share of calibration cases used to tune RAPS.
    min_group_size_policy : {"error", "marginal"}, default "error"
        What to do when a group (or class) has fewer calibration cases than
        the level needs (``ceil((n + 1) c) <= n``, i.e.
        ``n >= ceil(c / (1 - c))``): raise, or fall back to the marginal
        threshold and record the group in ``fallback_groups_``.
    random_state : int, numpy.random.Generator or None
        Seeds the randomised scores, the RAPS tuning split and the
        prediction-time uniforms.

    Attributes
    ----------
    quantile_ : float or None
        Marginal threshold (None when the calibration set is too small).
    quantiles_ : dict
        Threshold per group key or class index (Mondrian only).
    n_calibration_ : int
        Cases behind the thresholds (after the RAPS tuning split).
    group_sizes_ : dict
        Calibration cases per group or class.
    fallback_groups_ : list
        Groups that use the marginal threshold.
    lambda_reg_, k_reg_ : float
        RAPS penalty in use (0 for other methods).
    n_tuning_ : int
        Cases spent on RAPS tuning.
    predict_seed_ : int
        Seed of the prediction-time uniforms of the randomised sets (drawn
        from ``random_state`` at calibration).

    References
    ----------
    Vovk, Gammerman & Shafer (2005), *Algorithmic Learning in a Random World*.
    Romano, Sesia & Candès (2020), NeurIPS. Angelopoulos, Bates, Malik &
    Jordan (2021), ICLR. Sadinle, Lei & Wasserman (2019), JASA.
    """

    def __init__(
        self,
        method: str = "aps",
        *,
        confidence_level: float = 0.9,
        groups: Literal["class"] | None = None,
        randomized: bool | None = None,
        include_last_label: bool = True,
        lambda_reg: float | None = None,
        k_reg: float | None = None,
        raps_tuning_fraction: float = 0.2,
        min_group_size_policy: Literal["error", "marginal"] = "error",
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.score = get_score(method)
        self.method = self.score.name
        self.level = check_confidence_level(confidence_level)
        self.confidence_level = float(confidence_level)
        if groups not in (None, "class"):
            raise InputError(
                f"groups must be None or 'class'; got {groups!r}. Pass group keys (a Cohort "
                "column such as manufacturer) to calibrate(..., groups=...) instead."
            )
        self.groups = groups
        if randomized is None:
            randomized = self.score.randomizable
        if randomized and not self.score.randomizable:
            raise InputError(
                f"randomized=True is available for 'aps' and 'raps' only; got method "
                f"{self.method!r}."
            )
        self.randomized = bool(randomized)
        self.include_last_label = bool(include_last_label)
        for name, value in (("lambda_reg", lambda_reg), ("k_reg", k_reg)):
            if value is not None and not (np.isfinite(value) and value >= 0):
                raise InputError(f"{name} must be a finite number >= 0; got {value!r}.")
        self.lambda_reg = lambda_reg
        self.k_reg = k_reg
        if not 0.0 < raps_tuning_fraction < 1.0:
            raise InputError(f"raps_tuning_fraction must be in (0, 1); got {raps_tuning_fraction}.")
        self.raps_tuning_fraction = float(raps_tuning_fraction)
        if min_group_size_policy not in _POLICIES:
            raise InputError(
                f"min_group_size_policy must be one of {list(_POLICIES)}; got "
                f"{min_group_size_policy!r}."
            )
        self.min_group_size_policy = min_group_size_policy
        self.random_state = random_state

    # -- calibration ---------------------------------------------------------

    def calibrate(
        self, probabilities: ArrayLike, labels: ArrayLike, groups: ArrayLike | None = None
    ) -> ConformalClassifier:
        """Compute the conformal threshold(s) from held-out calibration cases.

        Parameters
        ----------
        probabilities : array of float, shape (n, K)
            Calibration probabilities (rows sum to 1; float32 stays float32).
        labels : array of int, shape (n,)
            True classes in ``0 .. K-1``.
        groups : array, shape (n,), optional
            Group key per case (Mondrian calibration), e.g. the manufacturer.

        Returns
        -------
        self

        Raises
        ------
        InputError
            Bad probabilities or labels; too few calibration cases (overall,
            or in a group under ``min_group_size_policy="error"``).
        """
        p = check_probabilities(probabilities)
        n, k = p.shape
        y = check_labels(labels, n, k)
        if groups is not None and self.groups == "class":
            raise InputError("groups='class' calibrates per label; do not pass groups as well.")
        g = None if groups is None else check_groups(groups, n)
        rng = normalise_random_state(self.random_state)[0]

        reg = None
        keep: NDArray[np.intp] | None = None
        self.lambda_reg_, self.k_reg_, self.n_tuning_ = 0.0, 0.0, 0
        if self.method == "raps":
            if self.lambda_reg is None or self.k_reg is None:
                perm = rng.permutation(n)
                n_tune = max(1, round(self.raps_tuning_fraction * n))
                tune, keep = np.sort(perm[:n_tune]), np.sort(perm[n_tune:])
                self.n_tuning_ = n_tune
                self.lambda_reg_, self.k_reg_ = tune_raps(
                    p,
                    y,
                    tune,
                    confidence_level=self.confidence_level,
                    lambda_reg=self.lambda_reg,
                    k_reg=self.k_reg,
                )
            else:
                self.lambda_reg_, self.k_reg_ = float(self.lambda_reg), float(self.k_reg)
            reg = Regularization(self.lambda_reg_, self.k_reg_)
        self._regularization = reg

        if keep is None:
            u = rng.random((n,)) if self.randomized else None
            scores = self.score.calibration_scores(p, y, u=u, regularization=reg)
        else:
            # score the kept rows batch by batch: no copy of the kept matrix
            u = rng.random((keep.shape[0],)) if self.randomized else None
            scores = np.concatenate(
                [
                    self.score.calibration_scores(
                        p[keep[sl]], y[keep[sl]], u=None if u is None else u[sl], regularization=reg
                    )
                    for sl in batches(keep.shape[0], k)
                ]
            )
            y = y[keep]
            g = None if g is None else g[keep]
        self.n_calibration_ = int(y.shape[0])
        self.n_classes_ = k
        self.quantile_ = self._quantile_or_none(scores)
        self.quantiles_: dict[Any, Any] = {}
        self.group_sizes_: dict[Any, int] = {}
        self.fallback_groups_: list[Any] = []
        if self.groups == "class":
            self._calibrate_groups(scores, y, list(range(k)))
        elif g is not None:
            self._calibrate_groups(scores, g, np.unique(g).tolist())
        elif self.quantile_ is None:
            conformal_quantile(scores, confidence_level=self.confidence_level)  # raises
        self.predict_seed_ = int(rng.integers(np.iinfo(np.int64).max))
        self._score_dtype: np.dtype[Any] | None = scores.dtype
        return self

    @classmethod
    def from_thresholds(
        cls,
        method: str,
        *,
        confidence_level: float,
        n_classes: int,
        quantile: float | None,
        quantiles: dict[Any, float] | None = None,
        groups: Literal["class"] | None = None,
        randomized: bool | None = None,
        lambda_reg: float = 0.0,
        k_reg: float = 0.0,
        predict_seed: int = 0,
    ) -> ConformalClassifier:
        """A calibrated classifier rebuilt from recorded thresholds, without the calibration data.

        The values :func:`medval.evaluate` records (``conformal.quantile``,
        ``conformal.thresholds``, ``conformal.lambda_reg``, ``conformal.k_reg``,
        ``conformal.set_seed``) give the same sets as the classifier that
        produced them (a deployed predictor, :mod:`medval.deploy`).
        ``quantiles`` maps each group (class index with ``groups="class"``) to
        its threshold; ``n_calibration_`` is unknown and set to 0.

        Raises
        ------
        InputError
            Neither a quantile nor per-group quantiles, or a bad setting.
        """
        model = cls(
            method,
            confidence_level=confidence_level,
            groups=groups,
            randomized=randomized,
            lambda_reg=lambda_reg,
            k_reg=k_reg,
        )
        if quantile is None and not quantiles:
            raise InputError("from_thresholds needs quantile or quantiles (one per group).")
        if groups == "class" and sorted(quantiles or {}) != list(range(n_classes)):
            raise InputError(f"groups='class' needs one quantile per class 0..{n_classes - 1}.")
        model.lambda_reg_, model.k_reg_, model.n_tuning_ = float(lambda_reg), float(k_reg), 0
        raps = model.method == "raps"
        model._regularization = Regularization(model.lambda_reg_, model.k_reg_) if raps else None
        model.n_calibration_, model.n_classes_ = 0, int(n_classes)
        model.quantile_ = quantile
        model.quantiles_ = dict(quantiles or {})
        model.group_sizes_, model.fallback_groups_ = {}, []
        model.predict_seed_ = int(predict_seed)
        model._score_dtype = None  # the scores' dtype follows the probabilities'
        return model

    def _quantile_or_none(self, scores: FloatArray) -> Any:
        if conformal_rank(scores.shape[0], self.level) > scores.shape[0]:
            return None
        return conformal_quantile(scores, confidence_level=self.confidence_level)

    def _calibrate_groups(self, scores: FloatArray, keys: NDArray[Any], levels: list[Any]) -> None:
        small: list[tuple[Any, int]] = []
        for key in levels:
            member = scores[keys == key]
            self.group_sizes_[key] = int(member.shape[0])
            q = self._quantile_or_none(member)
            if q is None:
                small.append((key, int(member.shape[0])))
            else:
                self.quantiles_[key] = q
        if not small:
            return
        need = min_calibration_size(self.level)
        what = "class" if self.groups == "class" else "group"
        listed = ", ".join(f"{key!r}: {m}" for key, m in small[:10])
        if self.min_group_size_policy == "error" or self.quantile_ is None:
            raise InputError(
                f"{len(small)} {what}(s) have too few calibration cases for confidence_level "
                f"{self.confidence_level} ({listed}); each needs ceil((n+1)(1-alpha)) <= n, i.e. "
                f"n >= {need}. Add cases, merge small {what}s, or use "
                "min_group_size_policy='marginal' to fall back to the marginal threshold."
            )
        for key, _ in small:
            self.quantiles_[key] = self.quantile_
            self.fallback_groups_.append(key)

    # -- prediction ----------------------------------------------------------

    def _check_calibrated(self) -> None:
        if not hasattr(self, "n_calibration_"):
            raise NotCalibratedError(
                "This ConformalClassifier is not calibrated yet; call "
                ".calibrate(probabilities, labels) on held-out cases first."
            )

    def predict_sets(
        self,
        probabilities: ArrayLike,
        groups: ArrayLike | None = None,
        *,
        random_state: int | np.random.Generator | None = None,
        case_ids: ArrayLike | None = None,
    ) -> NDArray[np.bool_]:
        """Prediction sets for new cases.

        Parameters
        ----------
        probabilities : array of float, shape (m, K)
            Probabilities of the cases to predict.
        groups : array, shape (m,), optional
            Group keys; required when calibrated per group.
        random_state : int, Generator or None
            Uniforms of the randomised sets; by default a seed drawn at
            calibration, so repeated calls give the same sets.
        case_ids : array of str, shape (m,), optional
            Key each case's uniform by ``(predict_seed_, case id)``
            (:func:`medval.conformal.case_uniforms`): a case's set no
            longer depends on the other cases in the call or their order.
            Not with ``random_state``.

        Returns
        -------
        array of bool, shape (m, K)
            ``sets[i, j]`` is True when class j is in case i's set.

        Raises
        ------
        NotCalibratedError
            Before :meth:`calibrate`.
        InputError
            Bad probabilities, wrong K, missing or unseen groups, repeated
            case ids, or both ``case_ids`` and ``random_state``.
        """
        self._check_calibrated()
        p = check_probabilities(probabilities)
        m, k = p.shape
        if k != self.n_classes_:
            raise InputError(
                f"probabilities have {k} classes but the calibration had {self.n_classes_}."
            )
        if case_ids is not None and random_state is not None:
            raise InputError("give case_ids or random_state to predict_sets, not both.")
        u = None
        if self.randomized and case_ids is not None:
            u = case_uniforms(self.predict_seed_, case_ids, n=m)
        elif self.randomized:
            seed = self.predict_seed_ if random_state is None else random_state
            u = normalise_random_state(seed)[0].random((m,))
        reg = self._regularization
        if self.groups == "class":
            q = np.array([self.quantiles_[j] for j in range(k)], dtype=self._dtype(p))
            scores = self.score.label_scores(p, u=u, regularization=reg)
            scores -= q
            return scores <= EPSILON
        thresholds = self._row_thresholds(m, groups, self._dtype(p))
        return self.score.row_sets(
            p, thresholds, u=u, include_last_label=self.include_last_label, regularization=reg
        )

    def _row_thresholds(self, m: int, groups: ArrayLike | None, dtype: np.dtype[Any]) -> FloatArray:
        if not self.quantiles_:
            if groups is not None:
                raise InputError(
                    "groups were passed to predict_sets but the calibration was marginal; "
                    "pass groups to calibrate() as well, or none here."
                )
            return np.full(m, self.quantile_, dtype=dtype)
        if groups is None:
            raise InputError(
                "This classifier was calibrated per group; pass the test cases' groups to "
                "predict_sets(probabilities, groups=...)."
            )
        g = check_groups(groups, m)
        keys, inverse = np.unique(g, return_inverse=True)
        unseen = [key for key in keys.tolist() if key not in self.quantiles_]
        if unseen:
            raise InputError(
                f"groups {unseen[:10]} were not seen at calibration (known: "
                f"{sorted(map(str, self.quantiles_))[:20]}); calibrate with cases from every "
                "group, or map new groups to a known key."
            )
        table = np.array([self.quantiles_[key] for key in keys.tolist()], dtype=dtype)
        return table[inverse.ravel()]

    def _dtype(self, p: FloatArray) -> np.dtype[Any]:
        """The calibration scores' dtype (rebuilt from thresholds: what p would give)."""
        if self._score_dtype is not None:
            return self._score_dtype
        return np.dtype(np.float64) if self.method == "topk" else p.dtype
