"""The result keys the README shows exist in a real result (the demo's)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from medval import Predictions, evaluate
from medval.gate import SCHEMA

README = Path(__file__).resolve().parents[1] / "README.md"
HEADS = (
    "discrimination.",
    "operating_point.",
    "calibration.",
    "conformal.",
    "subgroup.",
    "split.",
    "shift.",
    "leakage.",
    "cohort.",
    "uncertainty.",
    "triage.",
    "noninferiority.",
    "input.",
    "segmentation.",
    "regression.",
)
# <name>, <class>, <column>, {group}: one key part (no dot, no '=').
PLACEHOLDER = re.compile(r"<[a-z_]+>|\{[a-z_]+\}")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def _is_spec_setting(token: str) -> bool:
    """`shift.adjust`, `conformal.method`, ...: spec settings, not result keys."""
    section, _, rest = token.partition(".")
    name = re.split(r"[\[ =]", rest, maxsplit=1)[0]
    return name in SCHEMA.get(section, {})


def readme_keys(text: str) -> list[str]:
    """Result keys in inline backticks, and quoted in the README's code blocks."""
    quoted = [m for block in FENCE.findall(text) for m in re.findall(r"\"([^\"\n]+)\"", block)]
    inline = re.findall(r"`([^`\n]+)`", FENCE.sub("", text))
    found = [t for t in (*inline, *quoted) if t.startswith(HEADS)]
    return [t for t in dict.fromkeys(found) if not _is_spec_setting(t)]


def _pattern(key: str) -> re.Pattern[str]:
    """A key as a regex; a key ending in '.', '=' or '…' is a prefix, '*' a glob."""
    prefix = key.endswith((".", "=", "…"))
    parts = PLACEHOLDER.split(key.rstrip("…"))
    body = "[^.=]+".join(re.escape(p).replace(r"\*", ".*") for p in parts)
    return re.compile(body + (".+" if prefix else ""))


def _all_keys(result: dict[str, dict[str, object]]) -> list[str]:
    return [k for section in ("estimates", "values", "tables") for k in result[section]]


@pytest.fixture(scope="module")
def multiclass_keys() -> list[str]:
    """Keys with ``<class>`` need a task with more than two classes."""
    rng = np.random.default_rng(0)
    p = rng.dirichlet([1.0, 1.0, 1.0], size=90)
    preds = Predictions(
        [f"c{i}" for i in range(90)], p, labels=rng.integers(0, 3, 90), class_names=("a", "b", "c")
    )
    return _all_keys(json.loads(evaluate(preds, n_resamples=100).to_json()))


def test_the_extraction_sees_keys_placeholders_and_skips_settings() -> None:
    text = (
        "a `subgroup.manufacturer={group}.auroc`, `split.<name>.…` and `shift.adjust`\n"
        '```python\nrequire(r, "leakage.leak", "==", False)\n```\n'
    )
    assert readme_keys(text) == [
        "subgroup.manufacturer={group}.auroc",
        "split.<name>.…",
        "leakage.leak",
    ]
    assert _pattern("subgroup.manufacturer={group}.auroc").fullmatch(
        "subgroup.manufacturer=Aster Medical.auroc"
    )
    assert not _pattern("subgroup.manufacturer={group}.auroc").fullmatch(
        "subgroup.manufacturer.worst_auroc"
    )
    assert _pattern("split.<name>.").fullmatch("split.external.discrimination.auroc")
    assert _pattern("discrimination.*").fullmatch("discrimination.auprc")


@pytest.fixture(scope="module")
def segmentation_keys() -> list[str]:
    """Keys of a segmentation result (structure 'lesion', as in the README)."""
    from tests.evaluation._seg_cohort import cohort

    cases, frame = cohort()
    result = evaluate(cases, frame, n_resamples=200, test_splits=["internal", "external"])
    return _all_keys(json.loads(result.to_json()))


@pytest.fixture(scope="module")
def regression_keys() -> list[str]:
    """Keys of a regression result with a sigma, a calibration split and an external one."""
    import pandas as pd

    from medval import RegressionPredictions

    rng = np.random.default_rng(1)
    n = 300
    ids = [f"c{i}" for i in range(n)]
    y = rng.uniform(0, 200, n)
    cohort = pd.DataFrame(
        {"split": rng.choice(["calibration", "internal", "external"], n), "label": y,
         "manufacturer": rng.choice(["A", "B"], n)},
        index=pd.Index(ids, name="case_id"),
    )  # fmt: skip
    preds = RegressionPredictions(ids, y + rng.normal(0, 5, n), variances=np.full(n, 25.0))
    result = evaluate(preds, cohort, n_resamples=100, test_splits=["internal", "external"])
    return _all_keys(json.loads(result.to_json()))


def test_every_result_key_in_the_readme_exists(
    demo_run: Path,
    multiclass_keys: list[str],
    segmentation_keys: list[str],
    regression_keys: list[str],
) -> None:
    keys = readme_keys(README.read_text(encoding="utf-8"))
    assert "discrimination.auroc" in keys  # the extraction found the README's keys
    demo_keys = _all_keys(json.loads((demo_run / "result.json").read_text(encoding="utf-8")))
    missing = []
    for key in keys:
        pattern = _pattern(key)
        pool = multiclass_keys if "<class>" in key else demo_keys
        if "segmentation." in key:
            pool = segmentation_keys
        if "regression." in key:
            pool = regression_keys
        if not any(pattern.fullmatch(k) for k in pool):
            missing.append(key)
    assert not missing, f"README keys absent from a demo result: {missing}"


def test_the_walk_through_specs_are_valid(tmp_path: Path) -> None:
    """'Validate your own model': its spec reads, and so does it with the CT model's sections."""
    import tomllib

    from medval.gate import read_spec

    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Validate your own model") : text.index("## Command line")]
    first, second = re.findall(r"^```toml\n(.*?)^```", section, re.DOTALL | re.MULTILINE)
    (tmp_path / "mr.toml").write_text(first, encoding="utf-8")
    assert read_spec(tmp_path / "mr.toml")["preprocess.steps"][0]["method"] == "zscore"
    swapped = first[: first.index("[preprocess]")] + second + first[first.index("[splits]") :]
    (tmp_path / "ct.toml").write_text(swapped, encoding="utf-8")
    assert read_spec(tmp_path / "ct.toml")["preprocess.steps"][-1]["method"] == "imagenet"
    mr, ct = tomllib.loads(first), tomllib.loads(swapped)
    assert {s for s in mr if mr[s] != ct[s]} == {"preprocess", "model"}
