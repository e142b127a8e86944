"""[preprocess] expect per channel: each channel checked against its own mean and sd."""

from __future__ import annotations

from typing import Any

import pytest

from medval._errors import InputError, SpecError
from medval.evaluation import InputStatistics
from medval.gate import check_expect


def _row(channel_mean: list[float], channel_sd: list[float]) -> dict[str, Any]:
    n = len(channel_mean)
    mean = sum(channel_mean) / n
    # Pooled sd of equal-sized channels: within plus between.
    var = sum(s * s for s in channel_sd) / n + sum((m - mean) ** 2 for m in channel_mean) / n
    return {"by": "all", "group": "all", "n_cases": 10, "n_sampled": 10, "mean": mean,
            "sd": var**0.5, "p1": -2.0, "p50": 0.0, "p99": 2.0,
            "channel_mean": channel_mean, "channel_sd": channel_sd}  # fmt: skip


def test_one_channel_off_is_caught_only_per_channel() -> None:
    row = _row([0.45, 0.45, -0.9], [0.9, 0.9, 0.9])  # pooled: mean 0, sd ~1
    pooled = InputStatistics((row,), 0.0, 1.0)
    assert pooled.is_mismatch(row) is False
    per_channel = InputStatistics((row,), [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    assert per_channel.is_mismatch(row) is True
    assert "channel means [0.45, 0.45, -0.9]" in per_channel.messages()[0]
    assert per_channel.expected == {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    good = _row([0.1, -0.1, 0.0], [1.0, 1.1, 0.9])
    assert InputStatistics((good,), [0.0, 0.0, 0.0], 1.0).is_mismatch(good) is False


def test_a_channel_count_mismatch_is_flagged() -> None:
    row = _row([0.0], [1.0])
    assert InputStatistics((row,), [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]).is_mismatch(row) is True


def test_bad_expectations_are_refused() -> None:
    with pytest.raises(InputError, match="expected_mean has 3 channels and expected_std 2"):
        InputStatistics((), [0.0, 0.0, 0.0], [1.0, 1.0])
    with pytest.raises(InputError, match="expected_std must be > 0"):
        InputStatistics((), [0.0, 0.0], [1.0, 0.0])
    assert check_expect({"expect": {"mean": [0, 0, 0], "std": [1, 1, 1]}}) == {
        "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}  # fmt: skip
    with pytest.raises(SpecError, match=r"expect.mean has 3 channels and std 2"):
        check_expect({"expect": {"mean": [0, 0, 0], "std": [1, 1]}})
    with pytest.raises(SpecError, match=r"expect.std\[1\]"):
        check_expect({"expect": {"mean": [0, 0], "std": [1, "x"]}})
    with pytest.raises(SpecError, match=r"expect.std must be > 0"):
        check_expect({"expect": {"mean": [0, 0], "std": [1, -1]}})
