"""Running a torch model over a data loader: :func:`predict` (MC dropout, TTA, ensembles)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import numpy as np
import torch

from medval._errors import InputError
from medval._types import Predictions
from medval.inference._head import HeadPlan, dropout_modules, find_head, set_dropout
from medval.inference._tta import resolve_tta

__all__ = ["predict", "resolve_device"]

_CPU_FOLD_ROWS = 256  # folding more rows is slower on CPU (measured)
_SAME_ATOL = 1e-6  # float32 rounding of identical inputs in differently sized batches

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


def _repeat(a: Any, c: int) -> Any:
    if isinstance(a, torch.Tensor) and a.ndim >= 1:
        return a.repeat(c, *([1] * (a.ndim - 1)))
    return a


class _Sampler:
    """Draws MC samples from one model, caching the backbone when it can."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        mc_samples: int,
        output: OutputKind,
        head: str | torch.nn.Module | Sequence[str] | bool | None,
        mc_chunk: int | None,
        embed: torch.nn.Module | None,
    ) -> None:
        self.model, self.T, self.output = model, mc_samples, output
        self.head, self.mc_chunk, self.embed = head, mc_chunk, embed
        self.plan: HeadPlan | None = None
        self.probed = False
        self.features: list[torch.Tensor] = []

    def _embed_hook(self) -> Any:
        def hook(_m: torch.nn.Module, args: tuple[Any, ...]) -> None:
            self.features.append(args[0].detach().flatten(1).float().cpu())

        return None if self.embed is None else self.embed.register_forward_pre_hook(hook)

    def _eval(self, fn: Callable[[], Any]) -> Any:
        handle = self._embed_hook()
        try:
            return fn()
        finally:
            if handle is not None:
                handle.remove()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities of shape (S, b, K): S = 1 (deterministic) or T."""
        model = self.model
        if self.T == 0:
            out = self._eval(lambda: model(x))
            return _to_probabilities(_check_out(out), self.output)[None]
        # The embedding comes from whichever deterministic pass reaches its
        # module first: the probe, the backbone (capture) or the head.
        n_features = len(self.features)
        captured = None
        if not self.probed:
            self.probed = True
            if self.head is not False:
                head = None if self.head is True else self.head
                self.plan, captured = self._eval(lambda: find_head(model, x, head))
                # The probe's full pass comes first; the head's replay check may add more.
                del self.features[n_features + 1 :]
        b = x.shape[0]
        plan = self.plan
        if plan is not None:
            if captured is None:
                captured = self._eval(lambda: plan.capture(model, x))
            args, kwargs = captured
            if self.embed is not None and len(self.features) == n_features:
                self._eval(lambda: plan.run(*args, **kwargs))

            def forward(c: int) -> Any:
                return plan.run(*(_repeat(a, c) for a in args), **kwargs)
        else:
            if self.embed is not None and len(self.features) == n_features:
                self._eval(lambda: model(x))

            def forward(c: int) -> Any:
                return model(_repeat(x, c))

        set_dropout(model, True)
        try:
            return self._chunks(forward, b)
        finally:
            set_dropout(model, False)

    def _chunks(self, forward: Callable[[int], Any], b: int) -> torch.Tensor:
        if self.mc_chunk is not None:
            c = self.mc_chunk
        elif next(self.model.parameters(), torch.empty(0)).device.type == "cuda":
            c = self.T
        else:
            c = max(1, _CPU_FOLD_ROWS // max(b, 1))
        parts: list[torch.Tensor] = []
        done = 0
        while done < self.T:
            step = min(c, self.T - done)
            try:
                out = _check_out(forward(step))
            except torch.cuda.OutOfMemoryError:
                if c == 1:
                    raise
                c = max(1, c // 2)
                torch.cuda.empty_cache()
                continue
            parts.append(_to_probabilities(out, self.output).view(step, b, -1))
            done += step
        return torch.cat(parts)


def _check_out(out: Any) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise InputError(f"the model returned {type(out).__name__}; expected a tensor of scores.")
    return out


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


def predict(
    model: torch.nn.Module | Sequence[torch.nn.Module],
    loader: Iterable[Any],
    *,
    output: OutputKind = "logits",
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
) -> Predictions:
    """Run ``model`` over ``loader`` and collect :class:`~medval.Predictions`.

    With ``mc_samples=T > 0`` this is MC dropout (Gal and Ghahramani 2016):
    only the dropout modules (Dropout, Dropout1d/2d/3d, AlphaDropout,
    FeatureAlphaDropout) run in train mode; BatchNorm and everything else
    stay in eval. ``mc_probabilities`` (T, n, K) holds the samples and
    ``probabilities`` their mean (probabilities are averaged, never
    logits). A list of models is a deep ensemble (Lakshminarayanan et al.
    2017) and ``tta`` adds test-time augmentation; samples of every member
    and augmentation are stacked along the first axis of
    ``mc_probabilities``.

    Parameters
    ----------
    model : torch.nn.Module or sequence of torch.nn.Module
        Run in eval mode; every module's mode is restored afterwards, also
        after an exception.
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
    mc_samples : int, default 0
        0 is one deterministic pass; T > 0 draws T dropout samples, folded
        into the batch (``mc_chunk`` samples per forward pass).
    seed : int, default 0
        Torch sampling runs in ``torch.random.fork_rng`` seeded with it;
        the global generator is untouched. Results depend on the batch size.
    tta : {"hflip", "flips"} or sequence of callables, optional
        Test-time augmentations of the input batch, one sample each (times
        T with MC dropout).
    head : str, torch.nn.Module, list of str, bool or None, default None
        Head caching for MC dropout: the backbone runs once and only the
        head is sampled T times; same numbers as ``head=False`` for the same
        seed and ``mc_chunk``. ``None`` (or ``True``) detects a trailing
        submodule (or ``nn.Sequential`` tail) that holds every dropout
        module and returns the model's output, else a chain of the last
        modules the forward calls (``self.fc(self.drop(z))``); a name or
        module names the head, a list of names the chain; ``False`` samples
        the whole network. Every head is checked on the first batch: it must
        recompute the model's output from its cached input.
    mc_chunk : int, optional
        MC samples per forward pass. Default: all T on CUDA (halved on
        out-of-memory), ``256 // batch_size`` on CPU (at least 1). The
        dropout masks drawn depend on it: fix it for samples that reproduce
        across machines.
    embeddings : bool or str, default False
        Store penultimate features: ``True`` takes the input of the last
        ``nn.Linear``, a string names the module whose input to take. Taken
        from a deterministic pass (the first model, first augmentation).

    Returns
    -------
    Predictions

    Raises
    ------
    InputError
        On bad options, batches or model outputs, or an empty loader.

    Warns
    -----
    UserWarning
        When ``mc_samples > 0`` and the model has no dropout module, or the
        MC samples did not vary (dropout called functionally, or p = 0).
    """
    if output not in ("logits", "probabilities"):
        raise InputError(f"output must be 'logits' or 'probabilities'; got {output!r}.")
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
    modes = [{m: m.training for m in mdl.modules()} for mdl in models]
    samplers = [
        _Sampler(
            mdl,
            mc_samples=mc_samples,
            output=output,
            head=head,
            mc_chunk=mc_chunk,
            embed=_embed_module(mdl, embeddings) if i == 0 else None,
        )
        for i, mdl in enumerate(models)
    ]
    chunks: list[torch.Tensor] = []
    batch_ids: list[str] = []
    ids_complete = True
    batches: Iterable[Any] = loader
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(loader, desc="inference", unit="batch", leave=False)
    fork_devices = [dev.index or 0] if dev.type == "cuda" else []
    try:
        for mdl in models:
            mdl.to(dev)
            mdl.eval()
        with torch.random.fork_rng(devices=fork_devices), torch.inference_mode():
            torch.random.manual_seed(seed)
            for batch in batches:
                x, ids = _split_batch(batch, input_key)
                if not isinstance(x, torch.Tensor):
                    raise InputError(
                        f"the model input must be a torch.Tensor; got {type(x).__name__}."
                    )
                x = x.to(dev, non_blocking=True)
                samples = []
                for j, t in enumerate(transforms):
                    xt = t(x)
                    for i, s in enumerate(samplers):
                        if j > 0 and i == 0:
                            s.embed, keep = None, s.embed
                            samples.append(s(xt))
                            s.embed = keep
                        else:
                            samples.append(s(xt))
                chunks.append(torch.cat(samples).cpu())
                if ids is None:
                    ids_complete = False
                else:
                    batch_ids.extend(ids)
    finally:
        for mode in modes:
            for m, was_training in mode.items():
                m.train(was_training)
    if not chunks:
        raise InputError("the loader yielded no batches; is the data set empty?")
    mc = torch.cat(chunks, dim=1).double().numpy()
    mc /= mc.sum(axis=2, keepdims=True)
    if mc_samples > 1:
        _warn_if_constant(mc, mc_samples, models)
    probs = mc.mean(axis=0)
    n = probs.shape[0]
    ids_out = _case_ids(n, case_ids, batch_ids if ids_complete else None, loader)
    emb = samplers[0].features
    return Predictions(
        case_ids=ids_out,
        probabilities=probs,
        mc_probabilities=mc if mc.shape[0] > 1 or mc_samples > 0 else None,
        embeddings=torch.cat(emb).double().numpy() if emb else None,
        class_names=tuple(class_names),
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
