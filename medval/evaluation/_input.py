"""Input sanity: what the preprocessed images looked like, against what the model was trained on.

A model trained on per-image z-scored input (mean 0, sd 1) that is fed
min-max scaled input (mean about 0.2, sd about 0.2) collapses; nothing in
its outputs says why. :func:`medval.io.input_statistics` summarises the
preprocessed pixels of a seeded sample per split and scanner before the
model runs; this section records them (``input.by_group``) and, when the
spec declares what the model was trained on (``[preprocess] expect = { mean,
std }``), flags every group whose mean is more than half an expected
standard deviation away, or whose standard deviation is outside half to
twice the expected one (``input.mismatch``). The report leads with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from medval._errors import InputError
from medval.evaluation._inputs import Inputs
from medval.evaluation._section import Part, Section

__all__ = ["MEAN_TOLERANCE", "SD_RATIO", "SECTION", "InputStatistics"]

#: A group's mean may sit this many expected standard deviations from the expected mean.
MEAN_TOLERANCE = 0.5
#: The allowed ratio of a group's standard deviation to the expected one.
SD_RATIO = (0.5, 2.0)
_FIELDS = ("by", "group", "n_cases", "n_sampled", "mean", "sd", "p1", "p50", "p99")
RULE = (
    f"|mean - expected mean| > {MEAN_TOLERANCE} x expected sd, or sd / expected sd outside "
    f"[{SD_RATIO[0]}, {SD_RATIO[1]}]"
)


@dataclasses.dataclass(frozen=True)
class InputStatistics:
    """Intensity summaries of the preprocessed inputs and what the model expects.

    Attributes
    ----------
    rows : sequence of dict
        :func:`medval.io.input_statistics`: ``by``, ``group``, ``n_cases``,
        ``n_sampled``, ``mean``, ``sd``, ``p1``, ``p50``, ``p99``.
    expected_mean, expected_std : float, optional
        The mean and standard deviation of the input pixels the model was
        trained on (``[preprocess] expect``); both or neither.
    """

    rows: tuple[Mapping[str, Any], ...]
    expected_mean: float | None = None
    expected_std: float | None = None

    def __post_init__(self) -> None:
        rows = tuple(dict(r) for r in self.rows)
        for i, row in enumerate(rows):
            lacking = [f for f in _FIELDS if f not in row]
            if lacking:
                raise InputError(f"input statistics row {i} lacks {lacking}; give the rows "
                                 "medval.io.input_statistics returns.")  # fmt: skip
        object.__setattr__(self, "rows", rows)
        if (self.expected_mean is None) != (self.expected_std is None):
            raise InputError("give expected_mean and expected_std together (or neither).")
        if self.expected_std is not None and not self.expected_std > 0:
            raise InputError(f"expected_std must be > 0; got {self.expected_std}.")

    @property
    def expected(self) -> dict[str, float] | None:
        if self.expected_mean is None or self.expected_std is None:
            return None
        return {"mean": float(self.expected_mean), "std": float(self.expected_std)}

    def is_mismatch(self, row: Mapping[str, Any]) -> bool | None:
        """Whether one group's inputs are unlike the expected ones (None: nothing expected)."""
        e = self.expected
        if e is None:
            return None
        off = abs(float(row["mean"]) - e["mean"]) > MEAN_TOLERANCE * e["std"]
        ratio = float(row["sd"]) / e["std"]
        return bool(off or not SD_RATIO[0] <= ratio <= SD_RATIO[1])

    def mismatches(self) -> list[Mapping[str, Any]]:
        """The groups flagged by :meth:`is_mismatch`."""
        return [r for r in self.rows if self.is_mismatch(r)]

    def messages(self) -> list[str]:
        """One line per flagged group (for the run log, before the model runs)."""
        e = self.expected or {}
        return [
            f"PREPROCESSING MISMATCH on {r['by']} {r['group']!r}: inputs have mean "
            f"{r['mean']:.3g}, sd {r['sd']:.3g}; the model expects mean {e['mean']:g}, sd "
            f"{e['std']:g} ([preprocess] expect). Check the [preprocess] steps."
            for r in self.mismatches()
        ]


def as_input_statistics(value: Any) -> InputStatistics | None:
    """``evaluate(input_statistics=)``: an :class:`InputStatistics` or its rows."""
    if value is None or isinstance(value, InputStatistics):
        return value
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return InputStatistics(tuple(value))
    raise InputError(
        f"input_statistics must be InputStatistics or the rows of medval.io.input_statistics; "
        f"got {type(value).__name__}."
    )


def _run(inputs: Inputs, earlier: Part) -> Part:
    stats: InputStatistics = inputs.input_statistics
    out = Part()
    out.tables["input.by_group"] = [{**r, "mismatch": stats.is_mismatch(r)} for r in stats.rows]
    out.values["input.expected"] = stats.expected
    flagged = stats.mismatches()
    out.values["input.mismatch"] = None if stats.expected is None else bool(flagged)
    out.values["input.mismatch_groups"] = [f"{r['by']}={r['group']}" for r in flagged]
    out.values["input.rule"] = RULE
    return out


SECTION = Section(
    "input", "input sanity (preprocessed intensities)", _run, needs=("input_statistics",)
)
