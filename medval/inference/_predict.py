"""Running a torch model over a data loader: :func:`predict`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import torch

from medval._errors import InputError
from medval._types import Predictions

__all__ = ["predict", "resolve_device"]

OutputKind = Literal["logits", "probabilities"]


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


def _to_probabilities(out: torch.Tensor, output: OutputKind) -> torch.Tensor:
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2:
        raise InputError(f"the model must return (batch, K) scores; got shape {tuple(out.shape)}.")
    out = out.float()
    if output == "logits":
        if out.shape[1] == 1:
            p1 = torch.sigmoid(out)
            return torch.cat([1.0 - p1, p1], dim=1)
        return torch.softmax(out, dim=1)
    if out.shape[1] == 1:
        return torch.cat([1.0 - out, out], dim=1)
    return out


def predict(
    model: torch.nn.Module,
    loader: Iterable[Any],
    *,
    output: OutputKind = "logits",
    device: str | torch.device | None = None,
    case_ids: Sequence[str] | None = None,
    class_names: Sequence[str] = (),
    input_key: str = "image",
    progress: bool = False,
) -> Predictions:
    """Run ``model`` over ``loader`` and collect :class:`~medval.Predictions`.

    Parameters
    ----------
    model : torch.nn.Module
        Put in eval mode for the run; its modes are restored afterwards.
    loader : iterable of batches
        Yields tensors, ``(inputs, ...)`` tuples (first element is the input)
        or dicts with the input under ``input_key`` and optionally
        ``"case_id"``. Must not shuffle.
    output : {"logits", "probabilities"}, default "logits"
        What the model returns. Declared, never guessed. A single column
        (a binary head) becomes two columns ``[1 - p, p]``.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    case_ids : sequence of str, optional
        Needed when batches do not carry ``"case_id"``; otherwise taken from
        the batches, or ``loader.dataset.case_ids``, else ``"0".."n-1"``.
    class_names : sequence of str, optional
    input_key : str, default "image"
    progress : bool, default False
        Show a progress bar on stderr.

    Returns
    -------
    Predictions
    """
    if output not in ("logits", "probabilities"):
        raise InputError(f"output must be 'logits' or 'probabilities'; got {output!r}.")
    dev = resolve_device(device)
    modes = {m: m.training for m in model.modules()}
    model.to(dev)
    model.eval()
    chunks: list[torch.Tensor] = []
    batch_ids: list[str] = []
    ids_complete = True
    batches: Iterable[Any] = loader
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(loader, desc="inference", unit="batch", leave=False)
    try:
        with torch.inference_mode():
            for batch in batches:
                x, ids = _split_batch(batch, input_key)
                if not isinstance(x, torch.Tensor):
                    raise InputError(
                        f"the model input must be a torch.Tensor; got {type(x).__name__}."
                    )
                out = model(x.to(dev, non_blocking=True))
                if not isinstance(out, torch.Tensor):
                    raise InputError(
                        f"the model returned {type(out).__name__}; expected a tensor of scores."
                    )
                chunks.append(_to_probabilities(out, output).cpu())
                if ids is None:
                    ids_complete = False
                else:
                    batch_ids.extend(ids)
    finally:
        for m, was_training in modes.items():
            m.train(was_training)
    if not chunks:
        raise InputError("the loader yielded no batches; is the data set empty?")
    probs = torch.cat(chunks).double().numpy()
    probs /= probs.sum(axis=1, keepdims=True)
    n = probs.shape[0]
    ids_out = _case_ids(n, case_ids, batch_ids if ids_complete else None, loader)
    return Predictions(case_ids=ids_out, probabilities=probs, class_names=tuple(class_names))


def _case_ids(
    n: int, given: Sequence[str] | None, from_batches: list[str] | None, loader: Any
) -> np.ndarray:
    for source, ids in (
        ("case_ids", given),
        ("the batches' case_id", from_batches),
        ("loader.dataset.case_ids", getattr(getattr(loader, "dataset", None), "case_ids", None)),
    ):
        if ids is not None:
            if len(ids) != n:
                raise InputError(f"{source} has {len(ids)} ids but the model scored {n} cases.")
            return np.asarray([str(i) for i in ids])
    return np.asarray([str(i) for i in range(n)])
