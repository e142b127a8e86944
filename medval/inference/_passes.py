"""The batch loop of :func:`~medval.inference.predict`: every model and augmentation per batch.

Each batch goes to the device with a non-blocking copy (asynchronous from a
pinned loader, :func:`~medval.inference.make_loader`), runs under the run's
autocast (:mod:`medval.inference._precision`), and, when the device runs out
of memory, in halves (:mod:`medval.inference._halving`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from medval._errors import InputError
from medval.inference._halving import BatchLimit, run_in_pieces
from medval.inference._ids import CaseIds
from medval.inference._masks import U64, case_keys
from medval.inference._precision import autocast
from medval.inference._sampler import OutputKind, Sampler

__all__ = ["Passes", "resolve_device", "run_passes"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` picks CUDA when present, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(
            f"device {device!r} is not a torch device (try 'cpu' or 'cuda:0')."
        ) from exc


def _split_batch(batch: Any, input_key: str) -> tuple[torch.Tensor, list[str] | None]:
    """Return the model input and, when the batch names them, the case ids."""
    if isinstance(batch, dict):
        if input_key not in batch:
            raise InputError(
                f"batch dicts must hold the model input under {input_key!r}; got keys "
                f"{sorted(batch)}. Pass input_key= to name it."
            )
        ids = batch.get("case_id")
        return batch[input_key], None if ids is None else [str(i) for i in ids]
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise InputError("the loader yielded an empty tuple; expected (inputs, ...).")
        return batch[0], None
    return batch, None


def _embed_module(model: torch.nn.Module, embeddings: bool | str) -> torch.nn.Module | None:
    if embeddings is False:
        return None
    if isinstance(embeddings, str):
        try:
            return model.get_submodule(embeddings)
        except AttributeError as exc:
            raise InputError(f"embeddings={embeddings!r} names no submodule of the model.") from exc
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise InputError(
            "embeddings=True takes the input of the last nn.Linear, but the model has none; "
            "name the module whose input is the embedding: embeddings='<submodule name>'."
        )
    return linears[-1]


@dataclasses.dataclass
class Passes:
    """Raw outputs of every pass: ``mc`` (S, n, D) samples, ``det`` (A, n, D) deterministic."""

    mc: np.ndarray
    det: np.ndarray
    case_ids: np.ndarray
    features: list[torch.Tensor]


def _score_batch(
    samplers: list[Sampler],
    transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    x: torch.Tensor,
    keys: U64 | None,
    limit: BatchLimit,
    dev: torch.device,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One batch, in pieces of at most ``limit.size`` cases: (samples, deterministic) per piece."""
    features = samplers[0].features
    mark = len(features)

    def piece(lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal mark
        mark = len(features)
        xs, ks = x[lo:hi], None if keys is None else keys[lo:hi]
        samples, passes = [], []
        for j, t in enumerate(transforms):
            xt = t(xs)
            for i, s in enumerate(samplers):
                if j > 0 and i == 0:
                    s.embed, keep = None, s.embed
                    samples.append(s(xt, ks, (i, j)))
                    s.embed = keep
                else:
                    samples.append(s(xt, ks, (i, j)))
                assert s.deterministic is not None
                passes.append(s.deterministic)
        return torch.cat(samples).cpu(), torch.stack(passes).cpu()

    def forget() -> None:
        del features[mark:]  # the failed piece's embeddings
        if dev.type == "cuda":
            torch.cuda.empty_cache()

    return run_in_pieces(x.shape[0], piece, limit, on_oom=forget)


def run_passes(
    models: list[torch.nn.Module],
    loader: Iterable[Any],
    *,
    kind: OutputKind,
    dev: torch.device,
    case_ids: Sequence[str] | None,
    input_key: str,
    progress: bool,
    mc_samples: int,
    seed: int,
    transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    head: str | torch.nn.Module | Sequence[str] | bool | None,
    mc_chunk: int | None,
    embeddings: bool | str,
    hooks: Sequence[Any] = (),
    precision: str = "float32",
    batch_limit: BatchLimit | None = None,
) -> Passes:
    """Every model and augmentation over the loader, deterministic and MC passes (see predict)."""
    cast = autocast(precision, dev)  # refuses a precision the device cannot run, before any work
    limit = BatchLimit() if batch_limit is None else batch_limit
    modes = [{m: m.training for m in mdl.modules()} for mdl in models]
    chunks: list[torch.Tensor] = []
    deterministic: list[torch.Tensor] = []
    ids = CaseIds(case_ids, loader)
    batches: Iterable[Any] = loader
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(loader, desc="inference", unit="batch", leave=False)
    fork_devices = [dev.index or 0] if dev.type == "cuda" else []
    samplers: list[Sampler] = []
    try:
        samplers = [
            Sampler(
                mdl,
                mc_samples=mc_samples,
                output=kind,
                head=head,
                mc_chunk=mc_chunk,
                embed=_embed_module(mdl, embeddings) if i == 0 else None,
            )
            for i, mdl in enumerate(models)
        ]
        for mdl in models:
            mdl.to(dev)
            mdl.eval()
        with torch.random.fork_rng(devices=fork_devices), torch.inference_mode(), cast:
            torch.random.manual_seed(seed)
            for batch in batches:
                x, carried = _split_batch(batch, input_key)
                if not isinstance(x, torch.Tensor) or x.ndim == 0:
                    what = type(x).__name__ if not isinstance(x, torch.Tensor) else "0-d tensor"
                    raise InputError(
                        f"the model input must be a torch.Tensor with a batch dimension; "
                        f"got {what}."
                    )
                names = ids.take(x.shape[0], carried)
                keys = case_keys(seed, names) if mc_samples > 0 else None
                x = x.to(dev, non_blocking=True)
                for samples, passes in _score_batch(samplers, transforms, x, keys, limit, dev):
                    chunks.append(samples)
                    deterministic.append(passes)
    finally:
        for h in hooks:
            if h is not None:
                h.remove()
        for mode in modes:
            for m, was_training in mode.items():
                m.train(was_training)
    if not chunks:
        raise InputError("the loader yielded no batches; is the data set empty?")
    if batch_limit is None and limit.halvings:
        warnings.warn(
            f"out of memory: batches were halved {len(limit.halvings)} times, from "
            f"{limit.halvings[0][0]} to {limit.size} cases per forward pass (the outputs do not "
            "depend on it). Pass batch_limit=BatchLimit() to record it instead.",
            UserWarning,
            stacklevel=3,
        )
    mc = torch.cat(chunks, dim=1).double().numpy()
    det = torch.cat(deterministic, dim=1).double().numpy()
    return Passes(mc, det, ids.final(mc.shape[1]), samplers[0].features)
