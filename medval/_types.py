"""Core value types: :class:`Predictions` and :class:`Estimate`.

This module imports numpy only, so ``import medval`` stays light.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError

__all__ = [
    "COHORT_COLUMNS",
    "DICOM_COLUMNS",
    "Estimate",
    "Predictions",
    "as_case_ids",
    "check_class_labels",
    "check_cohort",
    "check_concentrations",
]

# Columns a Cohort may carry. Everything here is de-identified by io/: keys
# are salted hashes, ages are banded. Anything else is refused.
DICOM_COLUMNS: tuple[str, ...] = (
    "patient_key", "study_key", "site_key", "station_key",
    "modality", "manufacturer", "model_name", "software_version", "body_part",
    "kvp", "slice_thickness", "pixel_spacing", "magnetic_field_strength", "convolution_kernel",
    "rows", "columns", "photometric_interpretation",
    # Per-modality acquisition fields (technical tags only; see io/_phi.py and io/_row.py).
    "bits_stored", "exposure_mas", "ctdi_vol", "sequence_name", "scanning_sequence",
    "echo_time", "repetition_time", "detector_type", "exposure_index", "view_position",
    "compression_force", "body_part_thickness",
    "sex", "age_band",
)  # fmt: skip
COHORT_COLUMNS: frozenset[str] = frozenset((*DICOM_COLUMNS, "split", "label"))

_SUM_TOLERANCE = 1e-3


def as_case_ids(case_ids: ArrayLike, n: int) -> NDArray[np.str_]:
    ids = np.asarray(case_ids)
    if ids.ndim != 1 or ids.shape[0] != n:
        raise InputError(
            f"case_ids must have shape ({n},) to match the probabilities; got {ids.shape}."
        )
    ids = ids.astype(str)
    unique, counts = np.unique(ids, return_counts=True)
    if unique.size != n:
        dup = unique[counts > 1][:5].tolist()
        raise InputError(f"case_ids must be unique; duplicated: {dup}. Give each case one id.")
    return ids


def _check_probabilities(p: NDArray[np.floating[Any]], what: str) -> None:
    if not np.all(np.isfinite(p)):
        raise InputError(f"{what} contain NaN or infinite values; check the model outputs.")
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        raise InputError(
            f"{what} must lie in [0, 1]; got values in [{p.min():.4g}, {p.max():.4g}]. "
            "If these are logits, build with Predictions.from_logits(...)."
        )
    sums = p.sum(axis=-1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > _SUM_TOLERANCE)
    if bad.size:
        raise InputError(
            f"{what} rows must sum to 1; row {int(bad[0])} sums to {float(sums.flat[bad[0]]):.6g} "
            f"({bad.size} rows off). If these are logits or per-class sigmoid scores, build "
            "with Predictions.from_logits(...) or normalise them first."
        )


@dataclasses.dataclass(frozen=True, eq=False)
class Predictions:
    """A model's outputs on a set of cases.

    Parameters
    ----------
    case_ids : array of str, shape (n,)
        Unique, de-identified case identifiers.
    probabilities : array of float, shape (n, K)
        Class probabilities; rows sum to 1 (K >= 2).
    labels : array of int, shape (n,), optional
        True class indices in ``range(K)``.
    mc_probabilities : array of float, shape (T, n, K), optional
        Monte Carlo samples (MC dropout, ensembles, TTA).
    embeddings : array of float, shape (n, d), optional
        Penultimate features, for drift monitors.
    class_names : sequence of str, optional
        Names of the K classes; defaults to ``"0" .. "K-1"``.
    concentrations : array of float, shape (n, K), optional
        Dirichlet of an evidential head; its mean is ``probabilities`` (:meth:`from_dirichlet`).

    Raises
    ------
    InputError
        If shapes disagree, probabilities are not in [0, 1] or do not sum to
        one (the message hints at :meth:`from_logits`), labels are out of
        range, or concentrations are invalid or not the probabilities'.
    """

    case_ids: NDArray[np.str_]
    probabilities: NDArray[np.floating[Any]]
    labels: NDArray[np.int64] | None = None
    mc_probabilities: NDArray[np.floating[Any]] | None = None
    embeddings: NDArray[np.floating[Any]] | None = None
    class_names: tuple[str, ...] = ()
    concentrations: NDArray[np.floating[Any]] | None = None

    def __post_init__(self) -> None:
        p = np.asarray(self.probabilities)
        if p.ndim != 2 or p.shape[1] < 2:
            raise InputError(
                f"probabilities must have shape (n, K) with K >= 2; got {p.shape}. "
                "A single-column binary score s becomes [1 - s, s]."
            )
        if not np.issubdtype(p.dtype, np.floating):
            p = p.astype(np.float64)
        _check_probabilities(p, "probabilities")
        n, k = p.shape
        object.__setattr__(self, "probabilities", p)
        object.__setattr__(self, "case_ids", as_case_ids(self.case_ids, n))
        if self.labels is not None:
            object.__setattr__(self, "labels", check_class_labels(self.labels, n, k))
        if self.mc_probabilities is not None:
            mc = np.asarray(self.mc_probabilities)
            if mc.ndim != 3 or mc.shape[1:] != (n, k):
                raise InputError(f"mc_probabilities must have shape (T, {n}, {k}); got {mc.shape}.")
            _check_probabilities(mc, "mc_probabilities")
            object.__setattr__(self, "mc_probabilities", mc)
        if self.embeddings is not None:
            emb = np.asarray(self.embeddings)
            if emb.ndim != 2 or emb.shape[0] != n:
                raise InputError(f"embeddings must have shape ({n}, d); got {emb.shape}.")
            object.__setattr__(self, "embeddings", emb)
        names = tuple(str(c) for c in self.class_names) or tuple(str(i) for i in range(k))
        if len(names) != k:
            raise InputError(
                f"class_names has {len(names)} names but probabilities have {k} columns."
            )
        object.__setattr__(self, "class_names", names)
        if self.concentrations is not None:
            a = check_concentrations(self.concentrations, name="concentrations")
            mean = a / a.sum(axis=1, keepdims=True)
            if mean.shape != p.shape or not np.allclose(mean, p, rtol=0.0, atol=_SUM_TOLERANCE):
                raise InputError(
                    f"concentrations {a.shape} must be a Dirichlet whose mean alpha / alpha.sum(1) "
                    f"is the probabilities ({n}, {k}); use Predictions.from_dirichlet(...), and "
                    "drop concentrations when recalibrating."
                )
            object.__setattr__(self, "concentrations", a)

    @property
    def n_cases(self) -> int:
        """Number of cases n."""
        return int(self.probabilities.shape[0])

    @property
    def n_classes(self) -> int:
        """Number of classes K."""
        return int(self.probabilities.shape[1])

    @classmethod
    def from_logits(
        cls,
        case_ids: ArrayLike,
        logits: ArrayLike,
        *,
        labels: ArrayLike | None = None,
        class_names: Sequence[str] = (),
    ) -> Predictions:
        """Build from raw logits with a numerically stable softmax.

        A single logit column (a binary head) becomes two columns,
        ``[1 - sigmoid(z), sigmoid(z)]``.
        """
        z = np.asarray(logits, dtype=np.float64)
        if z.ndim == 1:
            z = z[:, None]
        if z.ndim != 2:
            raise InputError(f"logits must have shape (n,) or (n, K); got {z.shape}.")
        if not np.all(np.isfinite(z)):
            raise InputError("logits contain NaN or infinite values; check the model outputs.")
        if z.shape[1] == 1:
            z = np.concatenate([np.zeros_like(z), z], axis=1)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        return cls(
            case_ids=np.asarray(case_ids),
            probabilities=p,
            labels=None if labels is None else np.asarray(labels),
            class_names=tuple(class_names),
        )

    @classmethod
    def from_sigmoid(
        cls,
        case_ids: ArrayLike,
        logits: ArrayLike,
        *,
        column: int | None = None,
        labels: ArrayLike | None = None,
        class_names: Sequence[str] = (),
    ) -> Predictions:
        """One finding of a multi-label (sigmoid) head as a binary Predictions.

        ``logits`` (n,) or (n, L) hold independent per-label logits; with
        L > 1, ``column`` names the finding. The result is
        ``[1 - sigmoid(z), sigmoid(z)]`` (computed stably), so ``labels``
        are 0/1 for that finding and ``class_names`` its two states.
        """
        z = np.asarray(logits, dtype=np.float64)
        if z.ndim == 1:
            z = z[:, None]
        if z.ndim != 2:
            raise InputError(f"logits must have shape (n,) or (n, L); got {z.shape}.")
        if column is None and z.shape[1] != 1:
            raise InputError(
                f"a multi-label head gives {z.shape[1]} logits per case; pass column= "
                f"(0..{z.shape[1] - 1}) to pick the finding to validate."
            )
        j = 0 if column is None else column
        if not 0 <= j < z.shape[1]:
            raise InputError(f"column must be 0..{z.shape[1] - 1}; got {column}.")
        return cls.from_logits(case_ids, z[:, j], labels=labels, class_names=class_names)

    @classmethod
    def from_dirichlet(
        cls,
        case_ids: ArrayLike,
        alpha: ArrayLike,
        *,
        labels: ArrayLike | None = None,
        class_names: Sequence[str] = (),
    ) -> Predictions:
        """Build from the Dirichlet ``alpha`` (n, K) > 0 of an evidential head (raw evidence + 1).

        Sensoy, Kaplan and Kandemir (2018, NeurIPS). ``probabilities`` are the mean
        ``alpha / alpha.sum(1)``; :func:`medval.uncertainty.dirichlet_decompose` reads alpha.
        """
        a = check_concentrations(alpha)
        return cls(
            case_ids=np.asarray(case_ids),
            probabilities=a / a.sum(axis=1, keepdims=True),
            labels=None if labels is None else np.asarray(labels),
            class_names=tuple(class_names),
            concentrations=a,
        )

    def subset(self, mask: ArrayLike) -> Predictions:
        """Rows selected by a boolean mask or integer index array."""
        idx = np.asarray(mask)
        return Predictions(
            case_ids=self.case_ids[idx],
            probabilities=self.probabilities[idx],
            labels=None if self.labels is None else self.labels[idx],
            mc_probabilities=None
            if self.mc_probabilities is None
            else self.mc_probabilities[:, idx],
            embeddings=None if self.embeddings is None else self.embeddings[idx],
            class_names=self.class_names,
            concentrations=None if self.concentrations is None else self.concentrations[idx],
        )

    def with_labels(self, labels: ArrayLike) -> Predictions:
        """A copy carrying ``labels``."""
        return dataclasses.replace(self, labels=np.asarray(labels))


def check_class_labels(
    labels: ArrayLike, n: int, k: int, *, name: str = "labels", against: str = "probabilities"
) -> NDArray[np.int64]:
    """Return class indices ``0..k-1`` of shape (n,) as int64 or raise.

    Integer, boolean and whole-valued float labels are accepted;
    ``against`` names the array they must match (in the messages).
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise InputError(f"{name} must have shape ({n},) to match {against}; got {y.shape}.")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise InputError(f"{name} must be whole class indices; got NaN or fractional values.")
    elif y.dtype.kind not in "iub":
        raise InputError(f"{name} must be integer class indices 0..{k - 1}; got dtype {y.dtype}.")
    yi = y.astype(np.int64)
    bad = np.flatnonzero((yi < 0) | (yi >= k))
    if bad.size:
        raise InputError(
            f"{name} must lie in 0..{k - 1} (the columns of {against}); row {int(bad[0])} has "
            f"{int(yi[bad[0]])} ({bad.size} of {n} rows out of range)."
        )
    return yi


def check_concentrations(alpha: ArrayLike, *, name: str = "alpha") -> NDArray[np.float64]:
    """Dirichlet concentrations (n, K), K >= 2, finite and > 0, as float64; else InputError."""
    a = np.asarray(alpha, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] < 2:
        raise InputError(
            f"{name} must have shape (n, K) with K >= 2 Dirichlet concentrations (a binary "
            f"evidential head gives two); got {a.shape}."
        )
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~np.isfinite(a.sum(axis=1)) | (a <= 0.0).any(axis=1)  # sums overflow too
    if bad.any():
        row = int(np.argmax(bad))
        got = "a value <= 0" if (a[row] <= 0.0).any() else "a NaN, infinite or overflowing value"
        raise InputError(
            f"{name} must be positive Dirichlet concentrations (evidence + 1); got {got} in row "
            f"{row} ({int(bad.sum())} rows). Add 1 to raw evidence; logits need from_logits."
        )
    return a


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A number with its uncertainty.

    ``low``/``high`` are ``None`` when the interval is not estimable; then
    ``reason`` says why. ``value`` is ``None`` when even the point estimate
    is undefined (e.g. AUROC with one class present).
    """

    value: float | None
    low: float | None = None
    high: float | None = None
    confidence_level: float = 0.95
    method: str = ""
    n: int = 0
    seed: int | None = None
    n_resamples: int | None = None
    reason: str | None = None
    higher_is_better: bool | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.confidence_level < 1.0:
            raise InputError(f"confidence_level must be in (0, 1); got {self.confidence_level}.")
        for name in ("value", "low", "high"):
            v = getattr(self, name)
            if v is not None:
                f = float(v)
                if math.isnan(f):
                    raise InputError(f"Estimate.{name} is NaN; use None with a reason instead.")
                object.__setattr__(self, name, f)
        if (self.low is None) != (self.high is None):
            raise InputError("Estimate needs both bounds or neither.")
        if (self.value is None or self.low is None) and not self.reason:
            raise InputError("An Estimate without a value or bounds needs a reason.")

    @property
    def estimable(self) -> bool:
        """Whether both the value and the interval exist."""
        return self.value is not None and self.low is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the keys of ``result.json``)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Estimate:
        """Inverse of :meth:`to_dict`."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise InputError(
                f"Unknown Estimate fields {sorted(unknown)}; expected {sorted(fields)}."
            )
        # to_dict drops None fields, the value of a not-estimable Estimate included.
        return cls(**{"value": None, **data})

    def __str__(self) -> str:
        if self.value is None:
            return f"not estimable ({self.reason})"
        if self.low is None or self.high is None:
            return f"{self.value:.3f} (CI not estimable: {self.reason})"
        pct = round(self.confidence_level * 100)
        return f"{self.value:.3f} [{pct}% CI {self.low:.3f}, {self.high:.3f}]"


def check_cohort(frame: Any) -> Any:
    """Check that a Cohort DataFrame carries only whitelisted columns.

    Parameters
    ----------
    frame : pandas.DataFrame
        Indexed by ``case_id``.

    Raises
    ------
    InputError
        If the index is not named ``case_id``, is not unique, or a column is
        outside :data:`COHORT_COLUMNS` (it could hold PHI).
    """
    if getattr(frame.index, "name", None) != "case_id":
        raise InputError("A Cohort must be indexed by 'case_id' (frame.set_index('case_id')).")
    if not frame.index.is_unique:
        dup = frame.index[frame.index.duplicated()][:5].tolist()
        raise InputError(f"Cohort case_id values must be unique; duplicated: {dup}.")
    extra = sorted(set(map(str, frame.columns)) - COHORT_COLUMNS)
    if extra:
        raise InputError(
            f"Cohort columns {extra} are not on the de-identified whitelist "
            f"{sorted(COHORT_COLUMNS)}; drop them or map them to a whitelisted field."
        )
    return frame
