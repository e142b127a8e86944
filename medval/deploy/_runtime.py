"""A deployment bundle loaded: the validated pipeline as one callable.

:func:`load_deployment` checks every file against the digests in
``deployment.json`` before any of its code runs, then rebuilds the
preprocessing pipeline and the model(s). :class:`Deployment` runs images
through them with the run's MC-dropout samples and seed, then through the
run's decision rules (:class:`medval.deploy.Rules`).

Case ids: the MC-dropout masks and the uniforms of randomised conformal sets
are keyed by (seed, case id), as in the run. Given the run's case ids, the
bundle reproduces the run's answers for those cases; by default a deployed
bundle names each case by a digest of its preprocessed image, so the same
image gets the same answer whatever else is in the batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medval._errors import DataError, InputError, UnsafeModelError
from medval._provenance import file_sha256
from medval._types import Predictions
from medval.deploy._export import callable_source_sha256
from medval.deploy._manifest import factory_file, read_manifest
from medval.deploy._rules import DeploymentOutput, Rules

__all__ = ["Deployment", "load_deployment"]

_AGAIN = "export the bundle again from the validation run (medval export RESULT SPEC --out DIR)"


def _check_file(folder: Path, name: str, want: str | None, what: str) -> Path:
    """A bundle file whose SHA-256 must equal the recorded one (before it is used)."""
    path = folder / name
    if not path.is_file():
        raise DataError(f"{what} {folder.name}/{name} is missing from the bundle; {_AGAIN}.")
    sha = file_sha256(path)
    if sha != want:
        raise UnsafeModelError(
            f"{what} {folder.name}/{name} has SHA-256 {sha[:16]}..., not the recorded "
            f"{str(want)[:16]}...: it changed since the export, so medval refused it. Restore "
            f"the file, or {_AGAIN}."
        )
    return path


def _factory(folder: Path, text: str, want: str | None) -> Any:
    """The model factory, its source checked before it builds anything.

    A bundled ``.py`` file is hashed before it runs; an import path is
    imported and the file defining its callable hashed before the call.
    """
    from medval import io

    what = "model factory"
    source = factory_file(text)
    if source is not None:
        _check_file(folder, source.as_posix(), want, what)
    factory = io.Factory(text, key="deployment model.factory", base_dir=folder)
    if source is None and want is not None:
        sha = callable_source_sha256(factory)
        if sha != want:
            raise UnsafeModelError(
                f"{what} {text!r}: the file defining it has SHA-256 {str(sha)[:16]}..., not "
                f"the recorded {want[:16]}...: the installed code changed since the export, "
                "so medval refused it. Install the version the run validated, or validate "
                "again and export."
            )
    return factory


def _check_transforms(folder: Path, steps: Sequence[dict[str, Any]]) -> None:
    """Bundled transform files checked before they run (import paths: by io.Transform)."""
    for i, step in enumerate(steps):
        if step.get("op") != "transform":
            continue
        source = factory_file(str(step.get("callable")))
        if source is not None:
            name = f"preprocessing transform (step {i})"
            _check_file(folder, source.as_posix(), step.get("source_sha256"), name)


def load_deployment(path: str | Path, *, device: Any = None) -> Deployment:
    """Load a bundle written by :func:`medval.deploy.export_deployment`.

    Parameters
    ----------
    path : path
        The bundle folder (or its ``deployment.json``).
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.

    Raises
    ------
    DataError
        No bundle, another schema, or a file missing.
    UnsafeModelError
        A weights file, the factory's source or a transform's source differs
        from the one recorded at export (the message names the file and the fix).
    """
    from medval import io
    from medval.inference import resolve_device

    folder = Path(path)
    if folder.name == "deployment.json":
        folder = folder.parent
    manifest = read_manifest(folder)
    model = manifest["model"]
    files = [_check_file(folder, f["file"], f["sha256"], "weights file") for f in model["files"]]
    factory = None
    if model["factory"] is not None:
        factory = _factory(folder, model["factory"], model["factory_sha256"])
    steps = manifest["preprocess"]["steps"]
    _check_transforms(folder, steps)
    pipeline = io.Pipeline.from_steps(steps, base_dir=folder, key="deployment preprocess.steps")
    modules = [
        io.load_model(
            f, factory=factory, output_key=model["output_key"], output_index=model["output_index"]
        ).module
        for f in files
    ]
    return Deployment(manifest, modules, pipeline, device=resolve_device(device))


class Deployment:
    """The validated pipeline: preprocessing, model(s), MC dropout, decision rules.

    Built by :func:`load_deployment`. Call it on DICOM file paths, decoded
    images in modality units (arrays, or :class:`medval.io.Frame`) or an
    already preprocessed tensor (n, C, H, W).

    Attributes
    ----------
    manifest : dict
        ``deployment.json``.
    rules : Rules
    pipeline : medval.io.Pipeline
    models : list of torch.nn.Module
    device : torch.device
    """

    def __init__(self, manifest: dict[str, Any], models: list[Any], pipeline: Any, *,
                 device: Any) -> None:  # fmt: skip
        self.manifest = manifest
        self.rules = Rules(manifest["rules"])
        self.pipeline = pipeline
        self.models = models
        self.device = device

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.rules.class_names

    def preprocess(self, images: Any) -> Any:
        """Images as the model's input tensor (n, C, H, W), through the recorded pipeline."""
        import torch

        from medval import io

        if isinstance(images, torch.Tensor):
            if images.ndim != 4:
                raise InputError(
                    f"a tensor input must be preprocessed images (n, C, H, W); got shape "
                    f"{tuple(images.shape)}. Pass DICOM paths or decoded arrays to preprocess."
                )
            return images
        items = list(images)
        if not items:
            raise InputError("no images given.")
        if all(isinstance(item, (str, Path)) for item in items):
            # the run's dataset: same decoding, same messages naming the file
            ds = io.DicomDataset(items, [str(i) for i in range(len(items))], pipeline=self.pipeline)
            return torch.stack([ds[i]["image"] for i in range(len(ds))])
        arrays = [
            self.pipeline.apply(item) if isinstance(item, io.Frame)
            else self.pipeline(np.asarray(item))
            for item in items
        ]  # fmt: skip
        return torch.from_numpy(np.stack(arrays))

    def __call__(
        self,
        images: Any,
        *,
        case_ids: Sequence[str] | None = None,
        groups: Sequence[Any] | None = None,
    ) -> DeploymentOutput:
        """The run's answers for a batch of images.

        Parameters
        ----------
        images : sequence of DICOM paths, sequence of arrays or Frames, or tensor
            Paths are decoded as in the run (:func:`medval.io.read_image`);
            arrays are 2-D images in modality units (no header: no
            MONOCHROME1 inversion); a tensor is taken as preprocessed.
        case_ids : sequence of str, optional
            Key the MC-dropout masks and the randomised sets' uniforms; the
            run's case ids give the run's answers. Default: a digest of each
            preprocessed image.
        groups : sequence, optional
            Each case's value of the Mondrian column, when the run calibrated
            one conformal threshold per group of a cohort column.

        Returns
        -------
        DeploymentOutput
        """
        from medval.inference import predict

        x = self.preprocess(images)
        ids = list(case_ids) if case_ids is not None else _digest_ids(x)
        if len(ids) != x.shape[0]:
            raise InputError(f"{len(ids)} case_ids for {x.shape[0]} images; give one per image.")
        m = self.manifest["model"]
        b = int(m["batch_size"])
        preds = predict(
            self.models[0] if len(self.models) == 1 else self.models,
            [x[i : i + b] for i in range(0, x.shape[0], b)],
            output=m["output"],
            device=self.device,
            case_ids=ids,
            class_names=self.class_names,
            mc_samples=int(m["mc_samples"]),
            seed=int(m["seed"]),
            tta=None if m["tta"] == "none" else m["tta"],
        )
        return self.decide(preds, groups=groups)

    def decide(
        self, predictions: Predictions, *, groups: Sequence[Any] | None = None
    ) -> DeploymentOutput:
        """The run's decision rules on predictions made elsewhere (same model, same settings)."""
        return self.rules.decide(
            predictions.probabilities,
            case_ids=predictions.case_ids,
            mc_probabilities=predictions.mc_probabilities,
            groups=groups,
        )


def _digest_ids(x: Any) -> list[str]:
    """SHA-256 (16 hex digits) of each preprocessed image; a repeat gets ``#2``, ``#3``..."""
    ids: list[str] = []
    seen: dict[str, int] = {}
    for row in x.detach().cpu().contiguous().numpy():
        digest = hashlib.sha256(row.tobytes()).hexdigest()[:16]
        seen[digest] = seen.get(digest, 0) + 1
        ids.append(digest if seen[digest] == 1 else f"{digest}#{seen[digest]}")
    return ids
