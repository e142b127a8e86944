"""Output sanity: has the model collapsed, or is it at chance?

A model fed inputs unlike its training data (a wrong normalisation, window
or channel layout) typically returns nearly the same probability for every
case: its AUROC sits at 0.5 and nothing downstream is meaningful. Per
evaluated split this section records the spread of the positive-class
probability against the spread the labels would need (the standard deviation
of the 0/1 labels, sqrt(prevalence (1 - prevalence))), whether the AUROC
interval contains 0.5, and whether the calibration slope has collapsed
towards 0; the report leads with them and names preprocessing as the first
suspect.
"""

from __future__ import annotations

import math

import numpy as np

from medval.evaluation._inputs import Inputs
from medval.evaluation._section import Part, Section

__all__ = ["COLLAPSE_RATIO", "MIN_SCANNER_CASES", "SECTION"]

#: Scores whose standard deviation is below this fraction of the labels' own
#: are "collapsed" (a perfect model's scores spread like the labels; a useful
#: one rarely below a third of that).
COLLAPSE_RATIO = 0.1
#: Cases a scanner needs before its own spread is judged.
MIN_SCANNER_CASES = 10


def _run(inputs: Inputs, earlier: Part) -> Part:
    out = Part()
    for name in inputs.test_splits:
        prefix = inputs.prefix(name)
        y, s, _ = inputs.split_arrays(name)
        if y.size == 0:
            continue
        prevalence = float(y.mean())
        need = math.sqrt(prevalence * (1.0 - prevalence))
        sd = float(np.std(s))
        ratio = sd / need if need > 0 else None
        q05, q95 = (float(v) for v in np.quantile(s, [0.05, 0.95]))
        out.values[f"{prefix}sanity.score_sd"] = sd
        out.values[f"{prefix}sanity.score_range_90"] = [q05, q95]
        out.values[f"{prefix}sanity.label_sd"] = need
        out.values[f"{prefix}sanity.spread_ratio"] = ratio
        out.values[f"{prefix}sanity.collapsed"] = bool(ratio is not None and ratio < COLLAPSE_RATIO)
        out.values[f"{prefix}sanity.collapsed_scanners"] = _collapsed_scanners(
            inputs, name, s, need
        )
        auroc = earlier.estimates.get(f"{prefix}discrimination.auroc")
        chance = None
        if auroc is not None and auroc.low is not None and auroc.high is not None:
            chance = bool(auroc.low <= 0.5 <= auroc.high)
        elif sd == 0.0:  # every score tied: no interval, and no discrimination at all
            chance = True
        out.values[f"{prefix}sanity.chance_level"] = chance
        slope = earlier.values.get(f"{prefix}calibration.slope")
        out.values[f"{prefix}sanity.calibration_collapsed"] = (
            None if slope is None else bool(abs(float(slope)) < COLLAPSE_RATIO)
        )
    out.values["sanity.collapse_ratio"] = COLLAPSE_RATIO
    return out


def _collapsed_scanners(inputs: Inputs, split: str, s: np.ndarray, need: float) -> list[str]:
    """Scanners (manufacturers, >= MIN_SCANNER_CASES cases) whose scores barely vary.

    A model stuck at a different constant per scanner spreads across the
    split, so the split-level check misses it; within each scanner the
    spread is compared with the split's label spread.
    """
    column = inputs.column("manufacturer")
    if column is None or need <= 0:
        return []
    values = column[inputs.mask(split)]
    out = []
    for group in sorted({str(v) for v in values if v is not None and v == v}):
        sel = values.astype(str) == group
        if sel.sum() >= MIN_SCANNER_CASES and float(np.std(s[sel])) / need < COLLAPSE_RATIO:
            out.append(group)
    return out


SECTION = Section("sanity", "output sanity (collapse, chance level)", _run, tasks=("binary",))
