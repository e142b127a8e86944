"""The validated decision rules on probabilities: no model, no torch, no file.

:class:`Rules` reads the ``rules`` part of ``deployment.json`` (written by
:func:`medval.deploy.export_deployment` from a validation run) and turns the
deployed model's probabilities, and its MC-dropout samples, into what the run
measured: the decision at the operating threshold, the calibrated
probabilities, the conformal set with its group's threshold, the triage flag
and the referral. Each step repeats the computation of
:func:`medval.evaluate` with the numbers it recorded, so the same
probabilities and case ids give the same answers as in the run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval._errors import InputError

__all__ = ["DeploymentOutput", "Rules"]

# log(0) floors as the run used them: the conformal section's and the calibration section's.
_CONFORMAL_LOG_FLOOR = -50.0
_CALIBRATION_LOG_FLOOR = -700.0


@dataclasses.dataclass(frozen=True)
class DeploymentOutput:
    """Per-case answers of a :class:`~medval.deploy.Deployment`.

    Attributes
    ----------
    case_ids : (n,) str array
        The ids the MC-dropout masks and the randomised sets were keyed by.
    probabilities : (n, K) float array
        The deployed model's deterministic pass: the numbers the run's
        discrimination, operating point and referral were computed from.
    calibrated : (n, K) float array or None
        ``probabilities`` with the run's fitted temperature
        (``calibration.temperature``): the probabilities to show a reader.
        None when the run had no calibration split.
    decision : (n,) int array
        Class index: binary, the positive class when its probability is at
        or above the operating threshold; otherwise the most probable class.
    sets : (n, K) bool array or None
        Conformal prediction sets (None: conformal was off in the run).
    uncertainty : (n,) float array or None
        Total predictive uncertainty of the MC-dropout samples (the run's
        measure); None without MC dropout.
    refer_set, refer_uncertainty : (n,) bool arrays
        The set is not a single class; the uncertainty is at or above the
        run's cutoff. False where that rule is not part of the deployment.
    refer : (n,) bool array
        ``refer_set | refer_uncertainty``: send to a reader.
    triage : (n,) bool array or None
        Binary, with ``[conformal] triage_max_fnr``: flagged for priority
        reading by the conformal-risk-control threshold.
    class_names : tuple of str
    """

    case_ids: NDArray[np.str_]
    probabilities: NDArray[np.floating[Any]]
    calibrated: NDArray[np.float64] | None
    decision: NDArray[np.int64]
    sets: NDArray[np.bool_] | None
    uncertainty: NDArray[np.float64] | None
    refer_set: NDArray[np.bool_]
    refer_uncertainty: NDArray[np.bool_]
    refer: NDArray[np.bool_]
    triage: NDArray[np.bool_] | None
    class_names: tuple[str, ...]

    def labels(self) -> list[tuple[str, ...]]:
        """The classes in each set, by name (empty tuples without conformal sets)."""
        if self.sets is None:
            return [() for _ in self.case_ids]
        names = np.asarray(self.class_names)
        return [tuple(names[row].tolist()) for row in self.sets]

    def decisions(self) -> list[str]:
        """The decided class of each case, by name."""
        return [self.class_names[int(i)] for i in self.decision]


def _scaled(p: NDArray[Any], temperature: float, floor: float) -> NDArray[np.float64]:
    """``softmax(max(log p, floor) / T)``, as the run's temperature scaling computed it."""
    from medval.calibration import TemperatureScaler

    scaler = TemperatureScaler()
    scaler.temperature_ = float(temperature)
    with np.errstate(divide="ignore"):
        logp = np.maximum(np.log(np.asarray(p, dtype=np.float64)), floor)
    return scaler.predict_proba(logp)


class Rules:
    """The decision rules of a validation run, from ``deployment.json``'s ``rules``.

    Parameters
    ----------
    rules : mapping
        ``task``, ``operating_point``, ``calibration``, ``conformal``,
        ``triage``, ``referral`` as :func:`medval.deploy.export_deployment`
        writes them.

    Raises
    ------
    InputError
        A part is missing or malformed (the message names it).
    """

    def __init__(self, rules: Mapping[str, Any]) -> None:
        try:
            task = rules["task"]
            self.class_names = tuple(str(c) for c in task["class_names"])
            self.positive_class = int(task["positive_index"])
            self.multiclass = len(self.class_names) > 2
            self.threshold = float(rules["operating_point"]["threshold"])
            self.temperature = rules["calibration"]["temperature"]
            self.conformal: Mapping[str, Any] | None = rules["conformal"]
            self.triage: Mapping[str, Any] | None = rules["triage"]
            referral = rules["referral"]
            self.refer_on_set = bool(referral["set_not_singleton"])
            self.uncertainty: Mapping[str, Any] | None = referral["uncertainty"]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"deployment rules are incomplete or malformed ({type(exc).__name__}: {exc}); "
                "export the bundle again with medval export."
            ) from exc
        self._classifier = None if self.conformal is None else self._classifier_of(self.conformal)

    @property
    def mondrian_column(self) -> str | None:
        """The cohort column whose value picks each case's conformal threshold, if any."""
        m = None if self.conformal is None else self.conformal["mondrian"]
        return None if m in (None, "class") else str(m)

    def _classifier_of(self, c: Mapping[str, Any]) -> Any:
        """The run's calibrated conformal classifier, rebuilt from its recorded thresholds."""
        from medval.conformal import ConformalClassifier

        by_class = c["mondrian"] == "class"
        thresholds = dict(c["thresholds"] or {})
        quantiles: dict[Any, float] = (
            {self.class_names.index(k): float(q) for k, q in thresholds.items()}
            if by_class
            else {str(k): float(q) for k, q in thresholds.items()}
        )
        return ConformalClassifier.from_thresholds(
            c["method"],
            confidence_level=float(c["confidence_level"]),
            n_classes=len(self.class_names),
            quantile=None if c["quantile"] is None else float(c["quantile"]),
            quantiles=quantiles,
            groups="class" if by_class else None,
            randomized=bool(c["randomized"]),
            lambda_reg=float(c["lambda_reg"]),
            k_reg=float(c["k_reg"]),
            predict_seed=int(c["set_seed"] or 0),
        )

    def decide(
        self,
        probabilities: NDArray[np.floating[Any]],
        *,
        case_ids: Sequence[str] | NDArray[Any],
        mc_probabilities: NDArray[np.floating[Any]] | None = None,
        groups: Sequence[Any] | NDArray[Any] | None = None,
    ) -> DeploymentOutput:
        """The run's rules on one batch of probabilities (n, K).

        ``groups`` (n,): the Mondrian column's value per case, when the sets
        were calibrated per group of a cohort column (compared as text).

        Raises
        ------
        InputError
            Wrong number of classes, MC samples missing for an uncertainty
            referral, groups missing or unseen at calibration.
        """
        p = np.asarray(probabilities)
        n, k = p.shape
        if k != len(self.class_names):
            raise InputError(
                f"the model gave {k} classes but the run validated {len(self.class_names)} "
                f"({list(self.class_names)})."
            )
        ids = np.asarray(case_ids).astype(str)
        if self.multiclass:
            decision = p.argmax(axis=1).astype(np.int64)
        else:
            positive = p[:, self.positive_class].astype(np.float64) >= self.threshold
            decision = np.where(positive, self.positive_class, 1 - self.positive_class).astype(
                np.int64
            )
        calibrated = (
            None
            if self.temperature is None
            else _scaled(p, self.temperature, _CALIBRATION_LOG_FLOOR)
        )
        sets, triage = self._sets(p, ids, groups)
        refer_set = (
            sets.sum(axis=1) != 1 if sets is not None and self.refer_on_set else np.zeros(n, bool)
        )
        u, refer_u = self._uncertainty(mc_probabilities, n)
        return DeploymentOutput(
            case_ids=ids, probabilities=p, calibrated=calibrated, decision=decision,
            sets=sets, uncertainty=u, refer_set=refer_set, refer_uncertainty=refer_u,
            refer=refer_set | refer_u, triage=triage, class_names=self.class_names,
        )  # fmt: skip

    def _sets(
        self, p: NDArray[Any], ids: NDArray[np.str_], groups: Any
    ) -> tuple[NDArray[np.bool_] | None, NDArray[np.bool_] | None]:
        if self.conformal is None or self._classifier is None:
            return None, None
        t = self.conformal["temperature"]
        conf_p = p if t is None else _scaled(p, t, _CONFORMAL_LOG_FLOOR)
        column = self.mondrian_column
        keys = None
        if column is not None:
            if groups is None:
                raise InputError(
                    f"the run calibrated one conformal threshold per {column!r}; pass each "
                    f"case's {column} value: deployment(images, groups=[...])."
                )
            keys = np.asarray([str(g) for g in groups], dtype=object)
        sets = self._classifier.predict_sets(conf_p, keys, case_ids=ids)
        triage = None
        if self.triage is not None:
            score = conf_p[:, self.positive_class]
            triage = score >= float(self.triage["threshold_on_set_scale"])
        return sets, triage

    def _uncertainty(
        self, mc: NDArray[Any] | None, n: int
    ) -> tuple[NDArray[np.float64] | None, NDArray[np.bool_]]:
        if self.uncertainty is None:
            return None, np.zeros(n, dtype=bool)
        if mc is None:
            raise InputError(
                "this deployment refers on MC-dropout uncertainty; the MC samples are missing "
                "(run the model with mc_samples as recorded in deployment.json)."
            )
        from medval.uncertainty import decompose

        u = np.asarray(decompose(mc, measure=str(self.uncertainty["measure"])).total)
        cutoff = self.uncertainty["cutoff"]
        refer = u >= float(cutoff) if cutoff is not None else np.zeros(n, dtype=bool)
        return u, refer
