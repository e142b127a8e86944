"""One model's MC sampler: T dropout samples of a batch, with head caching."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch

from medval._errors import InputError
from medval.inference._head import HeadPlan, find_head
from medval.inference._masks import U64, CaseMasks

__all__ = ["OutputKind", "Sampler", "check_out", "to_probabilities"]

_CPU_FOLD_ROWS = 256  # folding more rows is slower on CPU (measured)

OutputKind = Literal["logits", "probabilities", "sigmoid", "identity"]


def to_probabilities(out: torch.Tensor, output: OutputKind) -> torch.Tensor:
    """(b, K) float32 probabilities from the model's (b,) or (b, K) output.

    ``"sigmoid"``: one independent logit per image (a multi-label head's
    column, picked by ``label_column``) -> ``[1 - sigmoid(z), sigmoid(z)]``.
    """
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2:
        raise InputError(f"the model must return (batch, K) scores; got shape {tuple(out.shape)}.")
    out = out.float()
    if output == "identity":  # a regression head's outputs, as they are
        return out
    if output == "sigmoid":
        if out.shape[1] != 1:
            raise InputError(
                f"output 'sigmoid' takes one logit per image, but the model returns "
                f"{out.shape[1]} (a multi-label head): pick the finding to validate with "
                f"model.label_column = 0..{out.shape[1] - 1} (load_model(label_column=...))."
            )
        p1 = torch.sigmoid(out)
        return torch.cat([1.0 - p1, p1], dim=1)
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


class Sampler:
    """Draws MC samples from one model, caching the backbone when it can.

    Dropout masks come from :class:`CaseMasks`, keyed per case, so a case's
    samples do not depend on the batch, the chunking or the other cases.
    """

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
        self.masks = CaseMasks(model)
        #: (b, K) probabilities of the last batch's deterministic pass (dropout off).
        self.deterministic: torch.Tensor | None = None
        #: Samples per forward after an out-of-memory halving (kept for later batches).
        self.chunk_cap: int | None = None

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

    def __call__(
        self, x: torch.Tensor, keys: U64 | None = None, stream: tuple[int, ...] = (0, 0)
    ) -> torch.Tensor:
        """Probabilities of shape (S, b, K): S = 1 (deterministic) or T.

        ``keys`` (b,) are the cases' mask keys (needed when T > 0) and
        ``stream`` (ensemble member, augmentation) separates their masks.
        """
        model = self.model
        if self.T == 0:
            out = self._eval(lambda: model(x))
            self.deterministic = to_probabilities(check_out(out), self.output)
            return self.deterministic[None]
        # The embedding comes from whichever deterministic pass reaches its
        # module first: the probe, the backbone (capture) or the head.
        n_features = len(self.features)
        captured = None
        if not self.probed:
            if self.head is not False:
                head = None if self.head is True else self.head
                self.plan, captured = self._eval(lambda: find_head(model, x, head))
                # The probe's full pass comes first; the head's replay check may add more.
                del self.features[n_features + 1 :]
            # Set after the probe: one that ran out of memory is tried again on the halves.
            self.probed = True
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

        if keys is None or len(keys) != b:
            raise InputError(f"MC sampling needs one mask key per case ({b}); got {keys!r}.")
        # The model as deployed: one pass with every dropout module in eval mode
        # (no masks), through the cached head when there is one.
        self.deterministic = to_probabilities(check_out(forward(1)), self.output)
        return self._sample(forward, b, keys, stream)

    def _sample(
        self, forward: Callable[[int], Any], b: int, keys: U64, stream: tuple[int, ...]
    ) -> torch.Tensor:
        """Hooks on, then T samples in chunks; dropout modules stay in eval mode."""
        with self.masks.active(keys, stream) as begin:

            def step(first: int, count: int) -> Any:
                begin(first, count)
                return forward(count)

            return self._chunks(step, b)

    def _chunks(self, forward: Callable[[int, int], Any], b: int) -> torch.Tensor:
        """Call ``forward(first, count)`` for chunks of samples; (T, b, K) probabilities."""
        if self.mc_chunk is not None:
            c = self.mc_chunk
        elif next(self.model.parameters(), torch.empty(0)).device.type == "cuda":
            c = self.T
        else:
            c = max(1, _CPU_FOLD_ROWS // max(b, 1))
        if self.chunk_cap is not None:
            c = min(c, self.chunk_cap)
        parts: list[torch.Tensor] = []
        done = 0
        while done < self.T:
            step = min(c, self.T - done)
            try:
                out = check_out(forward(done, step))
            except torch.OutOfMemoryError:
                if c == 1:
                    raise  # the batch is halved next (inference._halving)
                c = self.chunk_cap = max(1, c // 2)
                torch.cuda.empty_cache()
                continue
            parts.append(to_probabilities(out, self.output).view(step, b, -1))
            done += step
        return torch.cat(parts)


def check_out(out: Any) -> torch.Tensor:
    """The model output, which must be a tensor."""
    if not isinstance(out, torch.Tensor):
        raise InputError(f"the model returned {type(out).__name__}; expected a tensor of scores.")
    return out
