"""Two-sample shift tests on embeddings and on softmax outputs."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import ks_2samp

from medval._errors import InputError
from medval.stats import check_confidence_level, normalise_random_state

__all__ = ["KERNELS", "bbsd_ks", "mmd_test"]

FloatArray = NDArray[np.float64]
#: Kernels of :func:`mmd_test`.
KERNELS: tuple[str, ...] = ("rbf", "linear")


def _matrix(x: ArrayLike, name: str) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 2:
        raise InputError(f"{name} must be of shape (n, d) with n >= 2; got shape {np.shape(x)}.")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} contains NaN or infinite values; drop or impute those rows.")
    return a


def mmd_test(
    x_ref: ArrayLike,
    x_cur: ArrayLike,
    *,
    n_permutations: int = 500,
    kernel: str = "rbf",
    bandwidth: float | str = "median",
    random_state: int | np.random.Generator | None = 0,
) -> dict[str, Any]:
    """Kernel two-sample test (unbiased MMD², permutation p-value).

    Parameters
    ----------
    x_ref : array of float, shape (n, d)
        Reference embeddings.
    x_cur : array of float, shape (m, d)
        Current embeddings, same ``d``.
    n_permutations : int, default 500
    kernel : {"rbf", "linear"}, default "rbf"
    bandwidth : float or "median", default "median"
        RBF length scale ``sigma`` in ``exp(-|x - y|^2 / (2 sigma^2))``;
        ``"median"`` takes the median pairwise distance of the pooled sample.
    random_state : int, Generator or None, default 0

    Returns
    -------
    dict
        ``statistic`` (unbiased MMD²), ``p_value`` (``(1 + #perm >= obs) /
        (1 + n_permutations)``), ``kernel``, ``bandwidth``,
        ``n_permutations``, ``seed``, ``n_reference``, ``n_current``.

    Notes
    -----
    Builds the (n + m)² kernel matrix: subsample beyond a few thousand rows.

    References
    ----------
    Gretton, Borgwardt, Rasch, Schölkopf & Smola (2012), "A kernel
    two-sample test", JMLR 13:723-773.
    """
    x, y = _matrix(x_ref, "x_ref"), _matrix(x_cur, "x_cur")
    if x.shape[1] != y.shape[1]:
        raise InputError(f"x_ref has {x.shape[1]} features but x_cur has {y.shape[1]}.")
    if kernel not in KERNELS:
        raise InputError(f"Unknown kernel {kernel!r}; valid: {list(KERNELS)}.")
    if int(n_permutations) < 1:
        raise InputError(f"n_permutations must be at least 1; got {n_permutations}.")
    rng, seed = normalise_random_state(random_state)
    z = np.vstack([x, y])
    n, m = x.shape[0], y.shape[0]
    gram = z @ z.T
    sigma: float | None = None
    if kernel == "linear":
        k = gram
    else:
        sq = np.diag(gram)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)
        if bandwidth == "median":
            off = d2[np.triu_indices(n + m, 1)]
            sigma = float(np.sqrt(np.median(off))) or 1.0
        elif isinstance(bandwidth, (int, float)) and float(bandwidth) > 0:
            sigma = float(bandwidth)
        else:
            raise InputError(f"bandwidth must be a positive number or 'median'; got {bandwidth!r}.")
        k = np.exp(-d2 / (2.0 * sigma**2))
    b = int(n_permutations)
    ind = np.zeros((b + 1, n + m))
    ind[0, :n] = 1.0
    for i in range(1, b + 1):
        ind[i, rng.permutation(n + m)[:n]] = 1.0
    stats = _mmd_u(k, ind, n, m)
    obs = float(stats[0])
    p = float((1 + np.sum(stats[1:] >= obs)) / (b + 1))
    return {"statistic": obs, "p_value": p, "kernel": kernel, "bandwidth": sigma,
            "n_permutations": b, "seed": seed, "n_reference": n, "n_current": m}  # fmt: skip


def _mmd_u(k: FloatArray, ind: FloatArray, n: int, m: int) -> FloatArray:
    """Unbiased MMD² for each row of the 0/1 membership matrix ``ind`` (1 = reference)."""
    diag = np.diag(k)
    other = 1.0 - ind
    k_ind, k_other = ind @ k, other @ k
    s_xx = np.einsum("bi,bi->b", k_ind, ind) - ind @ diag
    s_yy = np.einsum("bi,bi->b", k_other, other) - other @ diag
    s_xy = np.einsum("bi,bi->b", k_ind, other)
    out: FloatArray = s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m)
    return out


def bbsd_ks(
    p_ref: ArrayLike, p_cur: ArrayLike, *, confidence_level: float = 0.95
) -> dict[str, Any]:
    """Black-box shift detection: a KS test per softmax output, Bonferroni-combined.

    Parameters
    ----------
    p_ref : array of float, shape (n, K)
        Model probabilities on reference data.
    p_cur : array of float, shape (m, K)
        Same model on current data.
    confidence_level : float, default 0.95
        Shift is declared when ``min_k p_k * K < 1 - confidence_level``
        (family-wise false-alarm rate at most ``1 - confidence_level``).

    Returns
    -------
    dict
        ``statistics`` and ``p_values`` (lists, one per class), ``p_value``
        (Bonferroni-adjusted minimum), ``shift_detected``,
        ``confidence_level``, ``n_reference``, ``n_current``.

    References
    ----------
    Lipton, Wang & Smola (2018), ICML (BBSD); Rabanser, Günnemann & Lipton
    (2019), "Failing loudly", NeurIPS.
    """
    cl = check_confidence_level(confidence_level)
    a, b = _matrix(p_ref, "p_ref"), _matrix(p_cur, "p_cur")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"p_ref has {a.shape[1]} classes but p_cur has {b.shape[1]}.")
    res = [ks_2samp(a[:, j], b[:, j]) for j in range(a.shape[1])]
    stats = [float(r.statistic) for r in res]
    pvals = [float(r.pvalue) for r in res]
    adjusted = min(1.0, min(pvals) * len(pvals))
    return {"statistics": stats, "p_values": pvals, "p_value": adjusted,
            "shift_detected": adjusted < 1.0 - cl, "confidence_level": cl,
            "n_reference": a.shape[0], "n_current": b.shape[0]}  # fmt: skip
