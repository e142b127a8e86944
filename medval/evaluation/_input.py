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


Expected = float | tuple[float, ...]


def _as_expected(value: Any, name: str) -> Expected | None:
    """A number, or one number per channel."""
    if value is None:
        return None
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        out = tuple(float(v) for v in value)
        if not out:
            raise InputError(f"{name} is an empty list; give one number, or one per channel.")
        return out[0] if len(out) == 1 else out
    return float(value)


def _first(value: Expected) -> float:
    return value[0] if isinstance(value, tuple) else value


def _per_channel(value: Expected, n: int) -> list[float]:
    return list(value) if isinstance(value, tuple) else [float(value)] * n


@dataclasses.dataclass(frozen=True)
class InputStatistics:
    """Intensity summaries of the preprocessed inputs and what the model expects.

    Attributes
    ----------
    rows : sequence of dict
        :func:`medval.io.input_statistics`: ``by``, ``group``, ``n_cases``,
        ``n_sampled``, ``mean``, ``sd``, ``p1``, ``p50``, ``p99`` (and per
        channel ``channel_mean``, ``channel_sd``).
    expected_mean, expected_std : float or sequence of float, optional
        The mean and standard deviation of the input pixels the model was
        trained on (``[preprocess] expect``); both or neither. One number
        each, or one per channel (e.g. ImageNet's three after a
        ``normalize`` step: 0 and 1 each; before it, the dataset's own):
        per channel, every channel is checked against its own.
    """

    rows: tuple[Mapping[str, Any], ...]
    expected_mean: Expected | Sequence[float] | None = None
    expected_std: Expected | Sequence[float] | None = None

    def __post_init__(self) -> None:
        rows = tuple(dict(r) for r in self.rows)
        for i, row in enumerate(rows):
            lacking = [f for f in _FIELDS if f not in row]
            if lacking:
                raise InputError(f"input statistics row {i} lacks {lacking}; give the rows "
                                 "medval.io.input_statistics returns.")  # fmt: skip
        object.__setattr__(self, "rows", rows)
        mean = _as_expected(self.expected_mean, "expected_mean")
        std = _as_expected(self.expected_std, "expected_std")
        object.__setattr__(self, "expected_mean", mean)
        object.__setattr__(self, "expected_std", std)
        if (mean is None) != (std is None):
            raise InputError("give expected_mean and expected_std together (or neither).")
        if isinstance(mean, tuple) and isinstance(std, tuple) and len(mean) != len(std):
            raise InputError(
                f"expected_mean has {len(mean)} channels and expected_std {len(std)}; give one "
                "number each, or one per channel for both."
            )
        stds = std if isinstance(std, tuple) else () if std is None else (std,)
        if any(not v > 0 for v in stds):
            raise InputError(f"expected_std must be > 0; got {std}.")

    def _pair(self) -> tuple[Expected, Expected] | None:
        """The expected mean and sd, as normalised by ``__post_init__``."""
        mean = _as_expected(self.expected_mean, "expected_mean")
        std = _as_expected(self.expected_std, "expected_std")
        return None if mean is None or std is None else (mean, std)

    @property
    def expected(self) -> dict[str, Any] | None:
        pair = self._pair()
        if pair is None:
            return None
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in zip(("mean", "std"), pair, strict=True)
        }

    def _channels_expected(self) -> int:
        sizes = [len(v) for v in (self.expected_mean, self.expected_std) if isinstance(v, tuple)]
        return max(sizes, default=0)

    def is_mismatch(self, row: Mapping[str, Any]) -> bool | None:
        """Whether one group's inputs are unlike the expected ones (None: nothing expected).

        With one expected number each, the pooled pixels are compared; with
        one per channel, each channel against its own, and a different
        number of channels is a mismatch.
        """
        pair = self._pair()
        if pair is None:
            return None
        mean, std = pair
        n = self._channels_expected()
        if not n:
            pairs = [
                (float(row["mean"]), float(row["sd"]), float(_first(mean)), float(_first(std)))
            ]
        else:
            got_mean = list(row.get("channel_mean") or [row["mean"]])
            got_sd = list(row.get("channel_sd") or [row["sd"]])
            if len(got_mean) != n:
                return True
            pairs = list(zip(got_mean, got_sd, _per_channel(mean, n), _per_channel(std, n),
                             strict=True))  # fmt: skip
        return any(
            abs(m - em) > MEAN_TOLERANCE * es or not SD_RATIO[0] <= sd / es <= SD_RATIO[1]
            for m, sd, em, es in pairs
        )

    def mismatches(self) -> list[Mapping[str, Any]]:
        """The groups flagged by :meth:`is_mismatch`."""
        return [r for r in self.rows if self.is_mismatch(r)]

    def messages(self) -> list[str]:
        """One line per flagged group (for the run log, before the model runs)."""
        e = self.expected or {}
        per_channel = bool(self._channels_expected())
        lines = []
        for r in self.mismatches():
            if per_channel:
                got = (f"channel means {_fmt(r.get('channel_mean') or [r['mean']])}, sds "
                       f"{_fmt(r.get('channel_sd') or [r['sd']])}")  # fmt: skip
            else:
                got = f"mean {r['mean']:.3g}, sd {r['sd']:.3g}"
            lines.append(
                f"PREPROCESSING MISMATCH on {r['by']} {r['group']!r}: inputs have {got}; the "
                f"model expects mean {_fmt(e['mean'])}, sd {_fmt(e['std'])} ([preprocess] "
                "expect). Check the [preprocess] steps."
            )
        return lines


def _fmt(value: Any) -> str:
    """A number or a per-channel list, briefly."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(f"{float(v):.3g}" for v in value) + "]"
    return f"{float(value):g}"


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
    "input", "input sanity (preprocessed intensities)", _run, needs=("input_statistics",),
    tasks=("binary", "multiclass", "regression"),
)  # fmt: skip
