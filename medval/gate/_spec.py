"""The validation spec (``medval.toml``): read, check, resolve paths.

Unknown keys are errors: a typo must never silently turn an analysis off.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from medval._errors import SpecError
from medval.gate._config import (
    OUTPUTS,
    SPEC_KEYS,
    EvaluationConfig,
    spec_choices,
    spec_fields,
)
from medval.gate._criteria import SEVERITIES, Criterion, check_criteria
from medval.gate._fields import Field, check_table
from medval.gate._inference import PRECISIONS, check_inference_spec
from medval.gate._preprocess import check_expect, preprocess_steps
from medval.gate._regression import REGRESSION_ONLY, REGRESSION_OUTPUTS, check_regression_spec
from medval.gate._segmentation import SEGMENTATION_ONLY, check_segmentation_spec
from medval.gate._settings import check_values, not_one_of

__all__ = [
    "CHOICES",
    "SCHEMA",
    "TTA_CHOICES",
    "Spec",
    "baseline_criterion",
    "check_spec",
    "choices",
    "read_spec",
    "spec_criteria",
]

# section -> key -> (accepted types, default; None = optional, ... = required)
SCHEMA: dict[str, dict[str, Field]] = {
    "task": {
        # "classification" (class_names) or "segmentation" (structures).
        "type": ((str,), "classification"),
        "class_names": ((list,), None),
        "positive_class": ((str,), None),
        # Segmentation: structure name -> its value in the label maps (or channel of a
        # multi-label mask).
        "structures": ((dict,), None),
        "multilabel": ((bool,), False),
        # Regression: the target's name, its unit and the range a label may take.
        "name": ((str,), None),
        "unit": ((str,), None),
        "range": ((list,), None),
    },
    "data": {
        # A DICOM folder with its labels CSV, or a metadata table (CSV/Parquet).
        "dicom_dir": ((str,), None),
        "labels": ((str,), None),
        "table": ((str,), None),
        "salt_env": ((str,), "MEDVAL_SALT"),
        # Processes reading DICOM headers (1: this process); the cohort is the same either way.
        "workers": ((int,), 1),
        # The labels CSV's key column (LABEL_KEYS); default: found from its header.
        "labels_key": ((str,), None),
        # With labels keyed by case_id: the file name ("stem") or relative path ("path"),
        # either without a .dcm suffix.
        "case_id_from": ((str,), "stem"),
        # Labels per series, study or patient: how image probabilities make one per unit.
        "aggregate": ((str,), "mean"),
        "top_k": ((int,), 3),
        # A file whose pixel data takes more bytes than this to decode is excluded at the
        # header scan (io.MAX_PIXEL_BYTES: 2 GiB).
        "max_pixel_bytes": ((int,), 2 * 1024**3),
        # Above this share of labelled files unusable (unreadable, undecodable), the run
        # stops: the cohort is probably wrong (io.MAX_EXCLUDED_FRACTION).
        "max_excluded_fraction": ((float,), 0.5),
        # Segmentation: reference masks, one per case (masks/<case_id>.npy|.npz|.nii|.nii.gz|
        # .dcm), and a CSV of case_id (the series folder under dicom_dir), split.
        "masks": ((str,), None),
        "cases": ((str,), None),
    },
    "preprocess": {
        # Steps in order (gate/_preprocess.STEPS), or the shorthand window/size.
        "steps": ((list,), None),
        "window": ((list,), None),
        "size": ((int, list), None),
        # What the model was trained on: { mean = ..., std = ... } of its input pixels.
        "expect": ((dict,), None),
    },
    "model": {
        # A model file, a list of them (an ensemble: the mean of the members'
        # probabilities, same factory), or its precomputed predictions (case_id, probability).
        "file": ((str, list), None),
        "predictions": ((str,), None),
        # "package.module:callable" or "model_def.py:callable" (relative to the spec's folder).
        "factory": ((str,), None),
        "output": ((str,), "logits"),
        # The forward returns a dict (output_key) or a tuple (output_index): the scores' entry.
        "output_key": ((str,), None),
        "output_index": ((int,), None),
        # A multi-label head (batch, L): the column of the finding validated (output "sigmoid").
        "label_column": ((int,), None),
        "trust_pickle": ((bool,), False),
        # Cases per batch: an integer, or "auto" (measured from free GPU memory; 64 on CPU).
        "batch_size": ((int, str), 64),
        "mc_samples": ((int,), 0),
        # true: the input of the last nn.Linear; or a submodule name. Feeds the MMD test.
        "embeddings": ((bool, str), False),
        "device": ((str,), "auto"),
        # Processes decoding the images for the model: "auto" (0 on CPU, min(8, cores) on CUDA).
        "loader_workers": ((int, str), "auto"),
        # Mixed precision (torch.autocast): "float32", "bfloat16" or "float16" (CUDA only),
        # checked on a seeded sample of cases against float32: the largest change of a
        # probability (regression: of a value, as a share of task.range) within the tolerance.
        "precision": ((str,), "float32"),
        "precision_check_cases": ((int,), 64),
        "precision_tolerance": ((float,), 0.01),
        # Test-time augmentation: an alias of medval.inference.TTA ("none": no augmentation).
        "tta": ((str,), "none"),
        # Segmentation: slice by slice ("2d") or in 3D patches ("3d"), a sliding window of
        # patch_size voxels ((y, x) or (z, y, x)) overlapping by this fraction.
        "mode": ((str,), "2d"),
        "patch_size": ((list,), None),
        "overlap": ((float,), 0.5),
        # Regression, output = "quantiles": the levels of the head's columns.
        "quantile_levels": ((list,), None),
    },
    # The evaluation's settings: generated from EvaluationConfig (gate/_config.py).
    "analysis": spec_fields("analysis"),
    "conformal": spec_fields("conformal"),
    "uncertainty": spec_fields("uncertainty"),
    # Subgroups, drift and leakage (medval.shift).
    "shift": spec_fields("shift"),
    # Segmentation metrics, lesions and the mask guarantees.
    "segmentation": spec_fields("segmentation"),
    # Regression errors, agreement, conformal intervals.
    "regression": spec_fields("regression"),
    # Automatic splits when the labels carry none (io.assign_splits).
    "splits": {
        "calibration_fraction": ((float,), 0.3),
        "seed": ((int,), None),  # default: analysis.seed
        "external": ((dict,), None),  # {column = [values]}: the 'external' split
    },
    "output": {
        "dir": ((str,), "validation"),
    },
    # Honest gating over time (docs/gate-integrity.md): the registration beside the data,
    # the test-set usage ledger, multiplicity across criteria and the reusable holdout.
    "gate": {
        # Refuse to gate a run whose spec or test set deviates from its registration
        # (a registration made with `medval register --strict` is strict whatever this says).
        "strict_registration": ((bool,), False),
        # Warn in the report past this many evaluations of the test set (default: the
        # registration's budget, else 20).
        "usage_budget": ((int,), None),
        # Family-wise control across the fail criteria and their groups: "none" (each
        # criterion at its own level; the release decision is an intersection-union test),
        # "holm" or "bonferroni".
        "multiplicity": ((str,), "none"),
        # "plain": criteria judged on the test split's numbers; "thresholdout": answered
        # through Thresholdout against the same metric on holdout_reference_split, a split
        # of data the team owns and tunes on (docs/holdout.md).
        "holdout": ((str,), "plain"),
        "holdout_reference_split": ((str,), None),
        "thresholdout_threshold": ((float,), 0.04),
        "thresholdout_sigma": ((float,), 0.01),
        "thresholdout_budget": ((int,), 10),
    },
    # Non-inferiority of the spec's model (candidate) against a baseline.
    "baseline": {
        "predictions": ((str,), None),
        "model": ((str,), None),
        "factory": ((str,), None),
        "output": ((str,), "logits"),
        "output_key": ((str,), None),
        "output_index": ((int,), None),
        "label_column": ((int,), None),
        "trust_pickle": ((bool,), False),
        **spec_fields("baseline"),  # margin, metric, split
        "margin": ((float,), ...),
        "severity": ((str,), "fail"),
    },
}
#: ``model.tta``: "none" and the aliases of :data:`medval.inference.TTA` (gate imports
#: no torch; tests/gate/test_spec_model.py checks the two agree).
TTA_CHOICES = ("none", "hflip", "flips")
#: ``data.labels_key``, ``data.case_id_from`` and ``data.aggregate``: the io
#: package's LABEL_KEYS, CASE_ID_RULES and AGGREGATIONS (gate does not import io;
#: tests/gate/test_spec_data.py checks they agree).
LABEL_KEYS = ("file", "case_id", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID",
              "AccessionNumber", "PatientID")  # fmt: skip
CASE_ID_RULES = ("stem", "path")
AGGREGATIONS = ("mean", "max", "noisy_or", "top_k_mean")
TASK_TYPES = ("classification", "segmentation", "regression")
#: ``gate.multiplicity`` and ``gate.holdout``.
MULTIPLICITY = ("none", "holm", "bonferroni")
HOLDOUT_MODES = ("plain", "thresholdout")
#: ``model.mode``: medval.inference.SEGMENT_MODES (tests check they agree).
SEGMENT_MODES = ("2d", "3d")
# section -> key -> allowed values: the one declaration of every closed set of
# strings; the reader checks it and the JSON Schema lists it (with
# baseline.metric, which comes from the metric registry: see choices()).
CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    **spec_choices(),
    "data": {
        "labels_key": LABEL_KEYS,
        "case_id_from": CASE_ID_RULES,
        "aggregate": AGGREGATIONS,
    },
    "task": {"type": TASK_TYPES},
    "model": {
        "output": (*OUTPUTS, *REGRESSION_OUTPUTS),
        "tta": TTA_CHOICES,
        "mode": SEGMENT_MODES,
        "precision": PRECISIONS,
    },
    "baseline": {"output": OUTPUTS, "severity": SEVERITIES},
    "gate": {"multiplicity": MULTIPLICITY, "holdout": HOLDOUT_MODES},
}
_REQUIRED_SECTIONS = ("task", "data", "model")
# Sections that are absent unless given (their required keys apply only then).
_PRESENCE_SECTIONS = ("baseline", "splits")
_ARRAYS = ("criteria",)


@dataclasses.dataclass(frozen=True)
class Spec:
    """A checked spec. Paths are absolute (resolved against the spec's folder)."""

    path: Path
    sections: dict[str, dict[str, Any]]
    criteria: tuple[Criterion, ...] = ()
    #: The dotted keys the file sets (the others hold their defaults).
    given: frozenset[str] = frozenset()

    def has(self, section: str) -> bool:
        """Whether an optional section (``baseline``) was given."""
        return bool(self.sections.get(section))

    def __getitem__(self, dotted: str) -> Any:
        section, key = dotted.split(".", 1)
        return self.sections[section][key]

    def resolve(self, dotted: str) -> Path:
        """A path-valued key, relative to the spec file."""
        return (self.path.parent / str(self[dotted])).resolve()


def check_spec(raw: dict[str, Any], *, source: str) -> dict[str, dict[str, Any]]:
    """Check a parsed spec against :data:`SCHEMA` and fill defaults."""
    unknown = sorted(set(raw) - set(SCHEMA) - set(_ARRAYS))
    if unknown:
        raise SpecError(
            f"{source}: unknown section [{unknown[0]}]; allowed sections: "
            f"{sorted([*SCHEMA, *_ARRAYS])}."
        )
    out: dict[str, dict[str, Any]] = {}
    for section, fields in SCHEMA.items():
        if section in _PRESENCE_SECTIONS and section not in raw:
            out[section] = {}
            continue
        given = raw.get(section, {})
        if section in _REQUIRED_SECTIONS and section not in raw:
            raise SpecError(f"{source}: missing section [{section}].")
        if not isinstance(given, dict):
            raise SpecError(f"{source}: [{section}] must be a table.")
        values = check_table(given, fields, where=source, name=section, shown=f"[{section}]")
        out[section] = values
    if out["task"]["type"] == "regression" and "output" not in raw.get("model", {}):
        # A regression head gives one value unless declared otherwise (model.output's
        # default, "logits", is a classifier's); a head of another width is refused.
        out["model"]["output"] = "mean"
    _check_semantics(out, source)
    return out


def _check_sources(s: dict[str, dict[str, Any]], source: str) -> None:
    data, model = s["data"], s["model"]
    dicom = data["dicom_dir"] is not None or data["labels"] is not None
    if dicom == (data["table"] is not None):
        raise SpecError(
            f"{source}: [data] needs either dicom_dir and labels (DICOM files with a labels "
            "CSV) or table (a CSV/Parquet metadata table), not both and not neither."
        )
    if dicom and (data["dicom_dir"] is None or data["labels"] is None):
        missing = "data.labels" if data["labels"] is None else "data.dicom_dir"
        raise SpecError(f"{source}: missing required key {missing} (dicom_dir needs labels).")
    if (model["file"] is None) == (model["predictions"] is None):
        raise SpecError(
            f"{source}: [model] needs either file (a model to run) or predictions (a CSV of "
            "case_id, probability), not both and not neither."
        )
    if data["table"] is not None and model["file"] is not None:
        raise SpecError(
            f"{source}: a metadata table (data.table) has no images to run model.file on; "
            "give model.predictions instead."
        )
    _check_model_files(model["file"], source)


def _check_data_limits(s: dict[str, dict[str, Any]], source: str) -> None:
    data = s["data"]
    if data["top_k"] < 1:
        raise SpecError(f"{source}: data.top_k must be an integer >= 1; got {data['top_k']}.")
    workers = data["workers"]
    if workers < 1:
        raise SpecError(
            f"{source}: data.workers must be an integer >= 1 (processes reading DICOM "
            f"headers; 1 reads them in this process); got {workers}."
        )
    if data["max_pixel_bytes"] < 1:
        raise SpecError(
            f"{source}: data.max_pixel_bytes must be an integer >= 1 (bytes a file may take "
            f"to decode; default {2 * 1024**3}, 2 GiB); got {data['max_pixel_bytes']}."
        )
    fraction = data["max_excluded_fraction"]
    if not 0.0 <= fraction <= 1.0:
        raise SpecError(
            f"{source}: data.max_excluded_fraction must be in [0, 1] (the share of labelled "
            f"files that may be unusable before the run stops); got {fraction}."
        )


def _check_model_files(files: str | list[Any] | None, source: str) -> None:
    """``model.file``: a path, or a non-empty list of distinct paths (an ensemble)."""
    if not isinstance(files, list):
        return
    if not files:
        raise SpecError(
            f"{source}: model.file is an empty list; give a model file, or a list of "
            'them for an ensemble (file = ["fold0.pt", "fold1.pt"]).'
        )
    for i, f in enumerate(files):
        if not isinstance(f, str) or not f:
            raise SpecError(
                f"{source}: model.file[{i}] must be a model file path (a string); got {f!r}."
            )
    if len(set(files)) != len(files):
        twice = next(f for f in files if files.count(f) > 1)
        raise SpecError(
            f"{source}: model.file lists {twice!r} twice; each ensemble member is one "
            "file (a repeated file would weigh that member double)."
        )


def _check_semantics(s: dict[str, dict[str, Any]], source: str) -> None:
    kind = s["task"]["type"]
    others = [*(SEGMENTATION_ONLY if kind != "segmentation" else ()),
              *(REGRESSION_ONLY if kind != "regression" else ())]  # fmt: skip
    given = [k for k in others if s[k.split(".")[0]][k.split(".")[1]] is not None]
    if given:
        owner = "segmentation" if given[0] in SEGMENTATION_ONLY else "regression"
        raise SpecError(
            f'{source}: {given[0]} is a {owner} key; set task.type = "{owner}" or remove it.'
        )
    if kind == "segmentation":
        check_segmentation_spec(s, source)
    elif kind == "regression":
        _check_sources(s, source)
        check_regression_spec(s, source)
    else:
        _check_classification(s, source)
    _check_common(s, source)


def _check_classification(s: dict[str, dict[str, Any]], source: str) -> None:
    if s["task"]["class_names"] is None:
        raise SpecError(
            f"{source}: missing required key task.class_names (a classifier's classes, "
            'e.g. ["normal", "pneumonia"]; a segmentation model: task.type = "segmentation" '
            "with task.structures)."
        )
    _check_sources(s, source)
    if s["model"]["output"] in REGRESSION_OUTPUTS:
        raise SpecError(
            f"{source}: model.output {s['model']['output']!r} is a regression head's; set "
            'task.type = "regression", or give a classifier\'s output: ' + f"{list(OUTPUTS)}."
        )
    names = s["task"]["class_names"]
    if len(names) < 2 or not all(isinstance(n, str) and n for n in names):
        raise SpecError(
            f"{source}: task.class_names must list at least two class names; got {names!r}."
        )
    if len(set(names)) != len(names):
        raise SpecError(f"{source}: task.class_names repeats a name: {names!r}.")
    if len(names) > 2 and (s["model"]["predictions"] is not None or s.get("baseline")):
        raise SpecError(
            f"{source}: model.predictions and [baseline] take one positive-class probability "
            f"per case, so they need a binary task; this one has {len(names)} classes."
        )
    pos = s["task"]["positive_class"]
    if pos is not None and pos not in names:
        raise SpecError(f"{source}: task.positive_class {pos!r} is not one of {names}.")


def _check_common(s: dict[str, dict[str, Any]], source: str) -> None:
    _check_data_limits(s, source)
    for section, keys in CHOICES.items():
        for key, allowed in keys.items() if s[section] else ():
            if s[section][key] is not None and s[section][key] not in allowed:
                raise not_one_of(f"{source}: {section}.{key}", s[section][key], "allowed", allowed)
    preprocess_steps(s["preprocess"], source=source)
    check_expect(s["preprocess"], source=source)
    check_values(EvaluationConfig.from_sections(s), keys=SPEC_KEYS, source=source)
    if not 0 <= s["model"]["mc_samples"] <= 1000:
        raise SpecError(
            f"{source}: model.mc_samples must be 0 (one deterministic pass) to 1000; "
            f"got {s['model']['mc_samples']}."
        )
    check_inference_spec(s, source)
    _check_model_keys(s, source)
    if s["baseline"]:
        _check_baseline(s["baseline"], source)
    if s["splits"]:
        _check_splits(s["splits"], source)
    _check_gate(s["gate"], source)


def _check_gate(gate: dict[str, Any], source: str) -> None:
    budget = gate["usage_budget"]
    if budget is not None and budget < 1:
        raise SpecError(
            f"{source}: gate.usage_budget must be an integer >= 1 (evaluations of the test "
            f"set before the report warns); got {budget}."
        )
    for key in ("thresholdout_threshold", "thresholdout_sigma"):
        if not 0.0 < gate[key] < 1.0:
            raise SpecError(
                f"{source}: gate.{key} must be in (0, 1) (on the scale of the metrics); "
                f"got {gate[key]}."
            )
    if gate["thresholdout_budget"] < 1:
        raise SpecError(
            f"{source}: gate.thresholdout_budget must be an integer >= 1 (overfitting "
            f"detections before the holdout is spent); got {gate['thresholdout_budget']}."
        )


def _check_output(section: dict[str, Any], name: str, source: str) -> None:
    """``<name>.output_key``/``output_index``/``label_column`` against each other and output."""
    key, index = section["output_key"], section["output_index"]
    if key is not None and index is not None:
        raise SpecError(
            f"{source}: give {name}.output_key (the model returns a dict) or "
            f"{name}.output_index (a tuple), not both."
        )
    if key == "":
        raise SpecError(f"{source}: {name}.output_key is empty; name the dict key of the scores.")
    if index is not None and index < 0:
        raise SpecError(f"{source}: {name}.output_index must be >= 0 (0: the first); got {index}.")
    column = section["label_column"]
    if column is not None and column < 0:
        raise SpecError(f"{source}: {name}.label_column must be >= 0 (0: the first); got {column}.")
    if column is not None and section["output"] not in ("sigmoid", "probabilities"):
        raise SpecError(
            f"{source}: {name}.label_column picks one finding of a multi-label head, whose "
            f'scores are independent: set {name}.output = "sigmoid" (logits) or '
            f'"probabilities"; got {section["output"]!r}.'
        )


def _check_self_trust(s: dict[str, dict[str, Any]], source: str) -> None:
    """A spec cannot grant itself the right to run code from a file."""
    for section in ("model", "baseline"):
        if (s.get(section) or {}).get("trust_pickle"):
            raise SpecError(
                f"{source}: {section}.trust_pickle = true: a spec cannot grant itself trust "
                "(it may come with the data). Remove the key and pass --trust-code on the "
                "command line if you trust the model file."
            )


def _check_model_keys(s: dict[str, dict[str, Any]], source: str) -> None:
    """The output selection, and what an ONNX model cannot do."""
    _check_self_trust(s, source)
    model = s["model"]
    _check_output(model, "model", source)
    if s.get("baseline"):
        _check_output(s["baseline"], "baseline", source)
    files = model["file"] if isinstance(model["file"], list) else [model["file"]]
    onnx = next((f for f in files if isinstance(f, str) and f.lower().endswith(".onnx")), None)
    if onnx is not None and model["mc_samples"] > 0:
        raise SpecError(
            f"{source}: model.mc_samples = {model['mc_samples']} needs dropout modules to "
            f"switch on, and the ONNX model {onnx!r} runs in onnxruntime without them: MC "
            "dropout is unavailable for ONNX. Set model.mc_samples = 0 (model.tta or an "
            "ensemble of files still give uncertainty)."
        )
    if onnx is not None and model["embeddings"] is not False:
        raise SpecError(
            f"{source}: model.embeddings needs the torch modules, and the ONNX model "
            f"{onnx!r} has none; set model.embeddings = false."
        )


def _metric_names() -> tuple[str, ...]:
    from medval.stats import METRICS

    return tuple(sorted(METRICS))


def choices() -> dict[tuple[str, str], tuple[str, ...]]:
    """(section, key) -> allowed values: :data:`CHOICES` and ``baseline.metric``."""
    out = {(s, k): allowed for s, keys in CHOICES.items() for k, allowed in keys.items()}
    out[("baseline", "metric")] = _metric_names()
    return out


def _check_splits(sp: dict[str, Any], source: str) -> None:
    if sp["seed"] is not None and sp["seed"] < 0:
        raise SpecError(
            f"{source}: splits.seed must be an integer >= 0 (it seeds the random split); "
            f"got {sp['seed']}."
        )
    fraction = sp["calibration_fraction"]
    if not 0.0 < fraction < 1.0:
        raise SpecError(
            f"{source}: splits.calibration_fraction must be in (0, 1) (the share of patients "
            f"in the calibration split); got {fraction}."
        )
    for column, values in (sp["external"] or {}).items():
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values)
        ):
            raise SpecError(
                f"{source}: splits.external.{column} must be a non-empty list of values, "
                f'e.g. external = {{ {column} = ["Philips"] }}; got {values!r}.'
            )


def _check_baseline(b: dict[str, Any], source: str) -> None:
    if b["predictions"] is not None and b["model"] is not None:
        raise SpecError(f"{source}: give baseline.predictions or baseline.model, not both.")


def read_spec(path: str | Path) -> Spec:
    """Read and check a ``medval.toml``.

    Raises
    ------
    SpecError
        Missing file, TOML syntax error, unknown section or key, wrong type
        or value; the message names the key and what is allowed.
    """
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SpecError(f"spec file {p} does not exist.") from exc
    except IsADirectoryError as exc:
        raise SpecError(
            f"spec path {str(p)!r} is a folder; give the spec file (e.g. {p / 'medval.toml'})."
        ) from exc
    except OSError as exc:
        raise SpecError(f"spec file {p} cannot be read: {exc.strerror or exc}.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{p} is not valid TOML: {exc}.") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"{p} is not UTF-8 text.") from exc
    except RecursionError as exc:  # tomllib recurses once per nesting level
        raise SpecError(
            f"{p} nests arrays or tables too deeply to read; a spec needs a few levels at most."
        ) from exc
    criteria = check_criteria(raw.get("criteria", []), source=p.name)
    sections = check_spec(raw, source=p.name)
    if sections["baseline"]:
        names = {c.name for c in criteria}
        if baseline_criterion(sections["baseline"]).name in names:
            raise SpecError(
                f"{p.name}: criteria.name {baseline_criterion(sections['baseline']).name!r} "
                "is reserved for the [baseline] non-inferiority criterion."
            )
    given = frozenset(
        f"{section}.{key}" for section, table in raw.items() if isinstance(table, dict)
        for key in table
    )  # fmt: skip
    return Spec(path=p.resolve(), sections=sections, criteria=criteria, given=given)


def baseline_criterion(baseline: dict[str, Any]) -> Criterion:
    """The built-in criterion of a ``[baseline]`` section.

    The candidate passes when the lower CI bound of (candidate - baseline)
    is above ``-margin``: the "non-inferior" or "superior" verdict of
    :func:`medval.stats.compare`.
    """
    metric = str(baseline["metric"])
    return Criterion(
        name=f"noninferiority.{metric}",
        key=f"noninferiority.{metric}.difference",
        op=">",
        threshold=0.0 - float(baseline["margin"]),  # 0.0, not -0.0, for margin 0
        bound="low",
        severity=baseline["severity"],
        description=f"{metric}: candidate not worse than the baseline by the margin",
    )


def spec_criteria(spec: Spec) -> tuple[Criterion, ...]:
    """Every criterion a spec declares, the built-in baseline one last."""
    if spec.has("baseline"):
        return (*spec.criteria, baseline_criterion(spec.sections["baseline"]))
    return spec.criteria
