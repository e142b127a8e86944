"""Obuchowski's variance of the AUROC for clustered data."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from medval._errors import InputError
from medval.stats._delong import _placements
from medval.stats._validate import check_binary_labels, check_clusters, check_scores

__all__ = ["clustered_auroc_variance"]


def clustered_auroc_variance(y_true: ArrayLike, y_score: ArrayLike, clusters: ArrayLike) -> float:
    """Variance of the AUROC when patients contribute several images.

    DeLong's placement values are summed per patient; the variance combines
    the between-patient spread of the positive and negative placement sums
    and their covariance (a patient may hold images of both classes). With
    one image per patient it is DeLong's variance.

    Parameters
    ----------
    y_true : array of int, shape (n,)
        0/1 labels.
    y_score : array of float, shape (n,)
    clusters : array, shape (n,)
        Patient key of each image.

    Returns
    -------
    float
        The variance; NaN when fewer than two patients have a positive
        image or fewer than two have a negative one.

    Raises
    ------
    InputError
        On non-binary labels, non-finite scores or mismatched lengths.

    References
    ----------
    Obuchowski (1997), "Nonparametric analysis of clustered ROC curve
    data", Biometrics 53:567-578; DeLong, DeLong & Clarke-Pearson (1988),
    Biometrics 44:837-845.
    """
    y = check_binary_labels(y_true)
    s = check_scores(y_score, y.shape[0])
    encoded = check_clusters(clusters, y.shape[0])
    if encoded is None:
        raise InputError(
            "clusters is None; pass one patient key per case (np.arange(n) for independent "
            "cases, which gives DeLong's variance)."
        )
    codes, k = encoded
    pos, neg = y == 1, y == 0
    n1, n0 = int(pos.sum()), int(neg.sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    aucs, v10, v01 = _placements(y, s[None, :])
    auc = float(aucs[0])
    v10_c = np.bincount(codes[pos], weights=v10[0], minlength=k)
    v01_c = np.bincount(codes[neg], weights=v01[0], minlength=k)
    m1 = np.bincount(codes[pos], minlength=k).astype(float)
    m0 = np.bincount(codes[neg], minlength=k).astype(float)
    d10, d01 = v10_c - m1 * auc, v01_c - m0 * auc
    k1, k0 = int((m1 > 0).sum()), int((m0 > 0).sum())
    if k1 < 2 or k0 < 2:
        return float("nan")
    s10 = k1 / ((k1 - 1) * n1) * float(np.sum(d10**2))
    s01 = k0 / ((k0 - 1) * n0) * float(np.sum(d01**2))
    s11 = k / (k - 1) * float(np.sum(d10 * d01))
    return s10 / n1 + s01 / n0 + 2.0 * s11 / (n1 * n0)
