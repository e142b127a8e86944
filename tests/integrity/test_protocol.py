"""The registered protocol: canonical, defaults filled, without the model or absolute paths."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from medval.integrity import PROTOCOL_SECTIONS, canonical_text, protocol, protocol_sha256

from ._specs import criterion, make_spec


def test_hash_is_the_sha256_of_the_canonical_json(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, criterion())
    text = json.dumps(protocol(spec), sort_keys=True, separators=(",", ":"))
    assert protocol_sha256(spec) == hashlib.sha256(text.encode()).hexdigest()
    assert canonical_text(protocol(spec)) == text


def test_hash_ignores_key_order_and_explicit_defaults(tmp_path: Path) -> None:
    a = make_spec(tmp_path, criterion(more='bound = "auto"'), name="a")
    b = make_spec(
        tmp_path,
        "[analysis]\nconfidence_level = 0.95\nn_resamples = 2000\n"
        '[gate]\nmultiplicity = "none"\n'
        '[[criteria]]\nthreshold = 0.85\nop = ">="\nseverity = "fail"\n'
        'key = "split.external.discrimination.auroc"\nname = "external-auroc"\n',
        name="b",
    )
    assert protocol_sha256(a) == protocol_sha256(b)


def test_hash_changes_with_a_criterion_or_a_setting(tmp_path: Path) -> None:
    base = protocol_sha256(make_spec(tmp_path, criterion(), name="a"))
    assert protocol_sha256(make_spec(tmp_path, criterion(threshold=0.8), name="b")) != base
    assert protocol_sha256(make_spec(tmp_path, criterion(name="other"), name="c")) != base
    more = criterion() + "[analysis]\nconfidence_level = 0.9\n"
    assert protocol_sha256(make_spec(tmp_path, more, name="d")) != base


def test_model_preprocess_output_and_baseline_files_are_not_registered(tmp_path: Path) -> None:
    a = make_spec(tmp_path, criterion(), name="a")
    other = '[preprocess]\nwindow = [40, 400]\n[output]\ndir = "elsewhere"\n'
    b_path = tmp_path / "b.toml"
    b_path.write_text(
        (tmp_path / "a.toml").read_text().replace("preds.csv", "v2.csv") + other,
        encoding="utf-8",
    )
    from medval.gate import read_spec

    b = read_spec(b_path)
    assert protocol_sha256(a) == protocol_sha256(b)
    with_baseline = make_spec(
        tmp_path, '[baseline]\npredictions = "old.csv"\nmargin = 0.05\n', name="c"
    )
    moved = make_spec(tmp_path, '[baseline]\npredictions = "new.csv"\nmargin = 0.05\n', name="d")
    assert protocol_sha256(with_baseline) == protocol_sha256(moved)
    sections = protocol(with_baseline)["sections"]
    assert set(sections) == {*PROTOCOL_SECTIONS, "baseline"}
    assert set(sections["baseline"]) == {"margin", "metric", "split", "severity"}
    assert protocol(with_baseline)["criteria"][-1]["name"].startswith("noninferiority.")


def test_paths_stay_as_written(tmp_path: Path) -> None:
    proto = protocol(make_spec(tmp_path, criterion()))
    text = canonical_text(proto)
    assert proto["sections"]["data"]["labels"] == "cohort/labels.csv"
    assert str(tmp_path) not in text
    assert "workers" not in proto["sections"]["data"]


def test_an_absolute_path_keeps_only_its_name(tmp_path: Path) -> None:
    from dataclasses import replace

    spec = make_spec(tmp_path)
    secret = "/data/DOE_JOHN_MRN123/labels.csv"
    for written in (secret, "C:\\DOE_JOHN_MRN123\\labels.csv", "~/DOE_JOHN_MRN123/labels.csv"):
        data = {**spec.sections["data"], "labels": written}
        proto = protocol(replace(spec, sections={**spec.sections, "data": data}))
        assert proto["sections"]["data"]["labels"] == "<absolute>/labels.csv"
        assert "DOE" not in canonical_text(proto)
