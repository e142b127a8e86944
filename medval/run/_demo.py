"""The embedded demo: a synthetic multi-site DICOM cohort, the shipped CNN, a full run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from medval._errors import SpecError
from medval.gate import read_spec
from medval.run._log import Log, RunOutcome
from medval.run._outdir import OutputFolder, output_error
from medval.run._spec import run_into

__all__ = ["DEMO_TASKS", "run_demo", "spec_template"]

DEMO_TASKS = ("classification", "segmentation", "regression")


def spec_template() -> str:
    """The commented ``medval.toml`` the demo writes (``medval/demo/spec.toml.template``)."""
    return resources.files("medval.demo").joinpath("spec.toml.template").read_text("utf-8")


def run_demo(
    out_dir: str | Path,
    *,
    seed: int = 0,
    train: bool = False,
    progress: bool = False,
    quiet: bool = False,
    argv: Sequence[str] | None = None,
    trainer: Callable[..., Any] | None = None,
    reproduce: str | Path | None = None,
    tolerance: float | None = None,
    checklist: str = "claim-2024",
    task: str = "classification",
    engine: Any = None,
) -> RunOutcome:
    """The embedded main job: synthetic multi-site DICOM cohort → CNN → report.

    Writes the cohort to ``out_dir/cohort/``, the model's weights to
    ``out_dir/model.pt``, a copyable spec to ``out_dir/medval.toml`` and the
    validation outputs (``report.html``, ``result.json``, ``run.log``,
    ``manifest.json``) to ``out_dir``. ``out_dir`` must be new or empty
    (checked first); everything is written to a staging folder beside it
    that takes its place only once the run is complete.

    Parameters
    ----------
    seed : int, default 0
        Seed of the synthetic cohort and of every statistic.
    train : bool, default False
        Retrain the CNN on this cohort's development sites with the shipped
        recipe (:func:`medval.demo.load_recipe`, its training seed included)
        instead of using the shipped weights. The trained model
        depends on the machine (CPU kernels, threads); the shipped one does
        not.
    trainer : callable, optional
        Replaces :func:`medval.demo.train` when ``train=True`` (tests).
    reproduce, tolerance, checklist
        As in :func:`run_spec`.
    task : {"classification", "segmentation", "regression"}, default "classification"
        ``"segmentation"``: synthetic CT-like volumes from three scanners with
        lesions of several sizes, the shipped 2D U-Net with dropout
        (:func:`medval.demo.shipped_segmenter`), and the segmentation
        analyses (overlap and boundary metrics, lesions and FROC, the mask
        guarantees, voxel uncertainty). ``"regression"``: synthetic hand
        radiographs from three scanners whose bone age the shipped CNN with a
        mean and log-variance head predicts (:func:`medval.demo.shipped_regressor`),
        and the regression analyses (errors, Bland-Altman, conformal intervals
        per scanner, the variance decomposition).
    """
    if task not in DEMO_TASKS:
        raise SpecError(f"--task must be one of {list(DEMO_TASKS)}; got {task!r}.")
    if task != "classification" and train:
        raise SpecError("--train is for the classification demo only (the others ship weights).")
    if task == "segmentation" and reproduce is not None:
        raise SpecError("--reproduce is not built for the segmentation demo yet.")
    folder = OutputFolder(out_dir, key="--out", fresh=True)
    with folder:
        try:
            if task == "segmentation":
                spec_path = _write_segmentation_inputs(folder, seed=seed, quiet=quiet)
            elif task == "regression":
                spec_path = _write_regression_inputs(folder, seed=seed, quiet=quiet)
            else:
                spec_path = _write_inputs(folder, seed=seed, train=train, progress=progress,
                                          quiet=quiet, trainer=trainer)  # fmt: skip
        except OSError as exc:
            raise output_error(exc, folder) from exc
        return run_into(
            folder, read_spec(spec_path), trusted=False, progress=progress, quiet=quiet,
            argv=argv, baseline=None, reproduce=reproduce, tolerance=tolerance,
            checklist=checklist, junit_xml=None, engine=engine,
        )  # fmt: skip


def _write_inputs(
    folder: OutputFolder,
    *,
    seed: int,
    train: bool,
    progress: bool,
    quiet: bool,
    trainer: Callable[..., Any] | None,
) -> Path:
    """The cohort, the model's weights and the spec, into the staging folder; the spec's path."""
    import shutil

    import numpy as np
    import torch

    from medval import demo, io

    out, name = folder.path, folder.target.name
    log = Log(quiet)
    log(f"writing a synthetic multi-site DICOM cohort to {name}/cohort (seed {seed})")
    info = demo.write_cohort(out / "cohort", seed=seed)
    recipe = demo.load_recipe()
    if train:
        data = io.load_cohort(
            out / "cohort" / "dicom",
            out / "cohort" / "labels.csv",
            class_names=list(info.class_names),
            progress=progress,
        )
        train_ids = list(data.cohort.index[data.cohort["split"] == "train"])
        dataset = io.DicomDataset(
            [data.paths[c] for c in train_ids], train_ids, window=info.window, size=info.image_size
        )
        labels = data.cohort.loc[train_ids, "label"].to_numpy(dtype=np.int64)
        log(
            f"training the demo CNN on {len(train_ids)} images from the development sites "
            "(the trained model depends on this machine's CPU kernels and threads)"
        )
        model = demo.make_model()
        settings = {k: recipe[k] for k in ("epochs", "batch_size", "lr", "augment")}
        (trainer or demo.train)(
            model, dataset, labels, seed=int(recipe["train_seed"]), progress=progress, **settings
        )
        torch.save(model.state_dict(), out / "model.pt")
    else:
        log(
            f"using the shipped demo weights (trained once on cohort seed "
            f"{recipe['cohort_seed']}; --train retrains on this machine)"
        )
        shutil.copyfile(demo.shipped_weights(), out / "model.pt")
    spec_path = out / "medval.toml"
    center, width = info.window
    spec_path.write_text(
        spec_template().format(
            name=spec_path.name,
            center=center,
            width=width,
            size=", ".join(map(str, info.image_size)),
            seed=seed,
        ),
        encoding="utf-8",
    )
    return spec_path


def _write_segmentation_inputs(folder: OutputFolder, *, seed: int, quiet: bool) -> Path:
    """The segmentation cohort, the shipped U-Net's weights and the spec; the spec's path."""
    import shutil

    from medval import demo

    out, name = folder.path, folder.target.name
    log = Log(quiet)
    log(f"writing synthetic CT volumes from three scanners to {name}/cohort (seed {seed})")
    demo.write_segmentation_cohort(out / "cohort", seed=seed)
    log("using the shipped demo U-Net weights (trained once from its recorded recipe)")
    shutil.copyfile(demo.shipped_segmenter_weights(), out / "model.pt")
    center, width = demo.SEG_WINDOW
    spec_path = out / "medval.toml"
    text = resources.files("medval.demo").joinpath("segmentation_spec.toml.template")
    spec_path.write_text(
        text.read_text("utf-8").format(
            name=spec_path.name, center=center, width=width, seed=seed,
            factory="medval.demo:make_segmenter", mc_samples=5,
        ),
        encoding="utf-8",
    )  # fmt: skip
    return spec_path


def _write_regression_inputs(folder: OutputFolder, *, seed: int, quiet: bool) -> Path:
    """The radiograph cohort, the shipped regressor's weights and the spec; the spec's path."""
    import shutil

    from medval import demo

    out, name = folder.path, folder.target.name
    log = Log(quiet)
    log(f"writing synthetic hand radiographs from three scanners to {name}/cohort (seed {seed})")
    demo.write_regression_cohort(out / "cohort", seed=seed)
    log("using the shipped demo regressor weights (trained once from its recorded recipe)")
    shutil.copyfile(demo.shipped_regressor(), out / "regressor.pt")
    spec_path = out / "medval.toml"
    text = resources.files("medval.demo").joinpath("regression_spec.toml.template")
    spec_path.write_text(
        text.read_text("utf-8").format(
            name=spec_path.name, seed=seed, **demo.regression_spec_fields()
        ),
        encoding="utf-8",
    )
    return spec_path
