"""Running a torch model over a data loader: :func:`predict` (MC dropout, TTA, ensembles)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import numpy as np
import torch

from medval._errors import InputError
from medval._types import Predictions
from medval.inference._halving import BatchLimit
from medval.inference._head import dropout_modules
from medval.inference._passes import Passes, resolve_device, run_passes
from medval.inference._sampler import OutputKind
from medval.inference._tta import resolve_tta

__all__ = ["Passes", "predict", "resolve_device", "run_passes"]

_SAME_ATOL = 1e-6  # float32 rounding of identical inputs in differently sized batches

#: What a model returns: ``predict(output=...)``.
Output = Literal["logits", "probabilities", "dirichlet", "sigmoid"]


def predict(
    model: torch.nn.Module | Sequence[torch.nn.Module],
    loader: Iterable[Any],
    *,
    output: Output = "logits",
    device: str | torch.device | None = None,
    case_ids: Sequence[str] | None = None,
    class_names: Sequence[str] = (),
    input_key: str = "image",
    progress: bool = False,
    mc_samples: int = 0,
    seed: int = 0,
    tta: str | Sequence[Callable[[torch.Tensor], torch.Tensor]] | None = None,
    head: str | torch.nn.Module | Sequence[str] | bool | None = None,
    mc_chunk: int | None = None,
    embeddings: bool | str = False,
    precision: str = "float32",
    batch_limit: BatchLimit | None = None,
) -> Predictions:
    """Run ``model`` over ``loader`` and collect :class:`~medval.Predictions`.

    With ``mc_samples=T > 0`` this is MC dropout (Gal and Ghahramani 2016):
    only the dropout modules (Dropout, Dropout1d/2d/3d, AlphaDropout,
    FeatureAlphaDropout) drop units, with torch's train-mode formulas;
    BatchNorm and everything else stay in eval. The masks are drawn per
    case from a counter-based generator keyed by ``(seed, case id)`` (by
    running position when no ids are known), so a case's samples are the
    same whatever the batch size, the order of the cases, ``mc_chunk`` or
    the number of loader workers (the masks are bit-identical on every
    machine; they are not torch's own dropout draws). Every dropout input
    must have the batch as its first dimension. ``mc_probabilities``
    (T, n, K) holds the samples; ``probabilities`` are always those of the
    deterministic forward pass (every dropout module in eval mode): the
    model as it will be deployed, so the headline metrics do not depend on
    ``mc_samples``. The samples' mean is ``mc_probabilities.mean(0)``
    (probabilities are averaged, never logits). A list of models is a deep
    ensemble (Lakshminarayanan et al. 2017) and ``tta`` adds test-time
    augmentation: ``probabilities`` average the members' and augmentations'
    deterministic passes, and their samples are stacked along the first
    axis of ``mc_probabilities``.

    Parameters
    ----------
    model : torch.nn.Module or sequence of torch.nn.Module
        Run in eval mode; every module's mode is restored afterwards, also
        after an exception.
    loader : iterable of batches
        Yields tensors, ``(inputs, ...)`` tuples (first element is the input)
        or dicts with the input under ``input_key`` and optionally
        ``"case_id"``. Must not shuffle when case ids come from
        ``case_ids`` or ``loader.dataset`` (they are matched by position).
    output : {"logits", "probabilities", "dirichlet", "sigmoid"}, default "logits"
        What the model returns. Declared, never guessed. A single column
        (a binary head) becomes two columns ``[1 - p, p]``. ``"sigmoid"``:
        one independent logit per image, e.g. one finding of a multi-label
        head (``io.load_model(..., label_column=j)`` keeps that column;
        more than one column is refused). ``"dirichlet"``:
        the concentrations alpha > 0, shape (batch, K >= 2), of an
        evidential head (Sensoy, Kaplan and Kandemir 2018); a network that
        outputs evidence e >= 0 must return ``e + 1`` itself. Probabilities
        are each pass's Dirichlet mean ``alpha / alpha.sum(1)`` (so MC
        samples hold one mean per sample); a single deterministic pass also
        keeps alpha as ``concentrations`` for
        :func:`medval.uncertainty.dirichlet_decompose`.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    case_ids : sequence of str, optional
        Needed when batches do not carry ``"case_id"``; otherwise taken from
        the batches, or ``loader.dataset.case_ids``, else ``"0".."n-1"``.
        MC dropout masks are keyed by these ids (same order of sources);
        cases sharing an id get the same masks.
    class_names : sequence of str, optional
    input_key : str, default "image"
    progress : bool, default False
        Show a progress bar on stderr.
    mc_samples : int, default 0
        0 is one deterministic pass; T > 0 draws T dropout samples, folded
        into the batch (``mc_chunk`` samples per forward pass).
    seed : int, default 0
        Run seed of the dropout masks (with each case's id). Anything else
        random in the model or ``tta`` runs in ``torch.random.fork_rng``
        seeded with it; the global generator is untouched.
    tta : {"hflip", "flips"} or sequence of callables, optional
        Test-time augmentations of the input batch, one sample each (times
        T with MC dropout).
    head : str, torch.nn.Module, list of str, bool or None, default None
        Head caching for MC dropout: the backbone runs once and only the
        head is sampled T times; same numbers as ``head=False``. ``None``
        (or ``True``) detects a trailing submodule (or ``nn.Sequential``
        tail) that holds every dropout module and returns the model's
        output, else a chain of the last modules the forward calls
        (``self.fc(self.drop(z))``); a name or module names the head, a list
        of names the chain; ``False`` samples the whole network. Every head
        is checked on the first batch: it must recompute the model's output
        from its cached input.
    mc_chunk : int, optional
        MC samples per forward pass. Default: all T on CUDA (halved on
        out-of-memory), ``256 // batch_size`` on CPU (at least 1). Speed
        and memory only: the samples do not depend on it.
    embeddings : bool or str, default False
        Store penultimate features: ``True`` takes the input of the last
        ``nn.Linear``, a string names the module whose input to take. Taken
        from a deterministic pass (the first model, first augmentation).
    precision : {"float32", "bfloat16", "float16"}, default "float32"
        Mixed precision: the forward passes run under ``torch.autocast`` to
        this type on the device; the outputs are cast to float32 before
        softmax or sigmoid, so probabilities stay valid. ``"float16"`` needs
        CUDA (CPU autocast takes ``"bfloat16"``). Compare with a float32 run
        (:func:`~medval.inference.compare_precision`) before trusting it.
    batch_limit : BatchLimit, optional
        Filled in as the run goes: when the device runs out of memory
        (``torch.OutOfMemoryError``), the batch runs in halves and later
        batches at that size, down to one case; each halving is recorded in
        it (without one, a warning says so). The outputs do not depend on it.
        Pass one with ``size`` set to start below the loader's batch size.

    Returns
    -------
    Predictions

    Raises
    ------
    InputError
        On bad options (a ``precision`` the device cannot run), batches or
        model outputs (with ``output="dirichlet"``, concentrations that are
        not finite and > 0 or fewer than two columns), or an empty loader;
        with ``mc_samples > 0``, when a dropout module's input does not have
        the batch as its first dimension; out of memory on a single case.

    Warns
    -----
    UserWarning
        When ``mc_samples > 0`` and the model has no dropout module, or the
        MC samples did not vary (dropout called functionally, or p = 0);
        when batches were halved for memory and no ``batch_limit`` records it.
    """
    if output not in ("logits", "probabilities", "dirichlet", "sigmoid"):
        raise InputError(
            f"output must be 'logits', 'probabilities', 'dirichlet' or 'sigmoid'; got {output!r}."
        )
    # Concentrations take the probabilities path (as they are); normalised below.
    kind: OutputKind = "probabilities" if output == "dirichlet" else output
    if isinstance(mc_samples, bool) or not isinstance(mc_samples, int) or mc_samples < 0:
        raise InputError(f"mc_samples must be an integer >= 0; got {mc_samples!r}.")
    if mc_chunk is not None and (not isinstance(mc_chunk, int) or mc_chunk < 1):
        raise InputError(f"mc_chunk must be a positive integer; got {mc_chunk!r}.")
    models = [model] if isinstance(model, torch.nn.Module) else list(model)
    if not models or not all(isinstance(m, torch.nn.Module) for m in models):
        raise InputError("model must be a torch.nn.Module or a non-empty list of them.")
    transforms = resolve_tta(tta)
    dev = resolve_device(device)
    no_dropout = [i for i, m in enumerate(models) if not dropout_modules(m)]
    if mc_samples > 0 and no_dropout:
        who = "the model has" if len(models) == 1 else f"ensemble members {no_dropout} have"
        warnings.warn(
            f"mc_samples > 0 but {who} no dropout module (nn.Dropout & co.); MC dropout "
            "cannot sample it (functional F.dropout is invisible here). Use tta= or an "
            "ensemble (a list of models) for uncertainty.",
            UserWarning,
            stacklevel=2,
        )
    hooks = [_dirichlet_shape_hook(m) for m in models] if output == "dirichlet" else []
    passes = run_passes(
        models, loader, kind=kind, dev=dev, case_ids=case_ids, input_key=input_key,
        progress=progress, mc_samples=mc_samples, seed=seed, transforms=transforms, head=head,
        mc_chunk=mc_chunk, embeddings=embeddings, hooks=hooks, precision=precision,
        batch_limit=batch_limit,
    )  # fmt: skip
    mc, ids_out = passes.mc, passes.case_ids
    alpha = None
    if output == "dirichlet":
        _check_dirichlet(mc, ids_out)
        alpha = mc[0].copy() if mc.shape[0] == 1 and mc_samples == 0 else None
    mc /= mc.sum(axis=2, keepdims=True)
    if mc_samples > 1:
        _warn_if_constant(mc, mc_samples, models)
    # The deployed model's probabilities: the deterministic pass (mean over ensemble
    # members and augmentations); MC samples feed the uncertainty analyses only.
    det = passes.det
    det /= det.sum(axis=2, keepdims=True)
    probs = det.mean(axis=0)
    emb = passes.features
    return Predictions(
        case_ids=ids_out,
        probabilities=probs,
        mc_probabilities=mc if mc.shape[0] > 1 or mc_samples > 0 else None,
        embeddings=torch.cat(emb).double().numpy() if emb else None,
        class_names=tuple(class_names),
        concentrations=alpha,
    )


def _dirichlet_shape_hook(model: torch.nn.Module) -> Any:
    """A forward hook refusing outputs that cannot be concentrations (None if unhookable).

    The model runs whole at least on the first batch (head caching probes it),
    and a model's number of outputs does not change between batches.
    """

    def hook(_m: torch.nn.Module, _args: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor) and (out.ndim != 2 or out.shape[1] < 2):
            raise InputError(
                'output="dirichlet" needs the model to return (batch, K) Dirichlet '
                f"concentrations with K >= 2; got shape {tuple(out.shape)}. A binary "
                "evidential head returns two columns (the Beta's parameters)."
            )

    try:
        return model.register_forward_hook(hook)
    except RuntimeError:  # TorchScript modules take no hooks; the value check remains
        return None


def _check_dirichlet(mc: np.ndarray, case_ids: np.ndarray) -> None:
    """Refuse concentrations (T, n, K) that are not finite and > 0, naming the case."""
    bad = ~(np.isfinite(mc) & (mc > 0.0))
    if bad.any():
        t, i, k = (int(v) for v in np.argwhere(bad)[0])
        sample = f" (pass {t})" if mc.shape[0] > 1 else ""
        raise InputError(
            'output="dirichlet" needs positive, finite Dirichlet concentrations alpha '
            f"(evidence + 1); case {str(case_ids[i])!r}{sample} has {mc[t, i, k]:.4g} in "
            f"class {k} ({int(bad.any(axis=(0, 2)).sum())} cases affected). If the network "
            "outputs evidence (>= 0, e.g. ReLU or softplus), return evidence + 1 from the "
            'model; if it outputs logits, use output="logits".'
        )


def _warn_if_constant(mc: np.ndarray, t: int, models: list[torch.nn.Module]) -> None:
    """Warn when a model with dropout modules gave T identical samples."""
    blocks = mc.reshape(-1, t, *mc.shape[1:])  # (augmentations x members, T, n, K)
    spread = np.ptp(blocks, axis=1).max(axis=(1, 2))
    for i, mdl in enumerate(models):
        if dropout_modules(mdl) and spread[i :: len(models)].max() <= _SAME_ATOL:
            who = "the model's" if len(models) == 1 else f"ensemble member {i}'s"
            warnings.warn(
                f"{who} {t} MC samples are identical: dropout did not act (p = 0, or dropout "
                "called functionally as F.dropout, which medval cannot switch on). Epistemic "
                "uncertainty will be 0; use tta= or an ensemble instead.",
                UserWarning,
                stacklevel=3,
            )
