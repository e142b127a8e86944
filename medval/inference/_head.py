"""MC dropout plumbing: finding dropout modules and the trailing head to cache."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from medval._errors import InputError

__all__ = ["DROPOUT_TYPES", "HeadPlan", "dropout_modules", "find_head", "set_dropout"]

DROPOUT_TYPES: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


def dropout_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Named dropout modules of ``model`` (functional dropout is invisible)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, DROPOUT_TYPES)]


def set_dropout(model: nn.Module, active: bool) -> None:
    """Switch only the dropout modules; everything else keeps its mode."""
    for _, m in dropout_modules(model):
        m.train(active)


class _StopForwardError(Exception):
    """Raised by a pre-hook to end a forward pass once the head input is captured."""


@dataclasses.dataclass
class HeadPlan:
    """A trailing part of the network that holds every dropout module.

    ``entry`` is the first module the head runs (its input is cached),
    ``run`` computes the model output from that input.
    """

    name: str
    entry: nn.Module
    run: Callable[..., Any]

    def capture(self, model: nn.Module, x: torch.Tensor) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Run the backbone only and return the head's (args, kwargs)."""
        store: dict[str, Any] = {}

        def hook(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            store["in"] = (args, kwargs)
            raise _StopForwardError

        handle = self.entry.register_forward_pre_hook(hook, with_kwargs=True)
        try:
            model(x)
        except _StopForwardError:
            pass
        finally:
            handle.remove()
        if "in" not in store:
            raise InputError(f"the head {self.name!r} was not called by the model's forward.")
        captured: tuple[tuple[Any, ...], dict[str, Any]] = store["in"]
        return captured


def _candidates(
    model: nn.Module, names: list[str]
) -> list[tuple[str, nn.Module, nn.Module, Callable[..., Any]]]:
    """(name, entry, exit, runner) from the deepest common ancestor up to the root."""
    parts = [n.split(".") for n in names]
    common: list[str] = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    out: list[tuple[str, nn.Module, nn.Module, Callable[..., Any]]] = []
    for depth in range(len(common), -1, -1):
        path = ".".join(common[:depth])
        node = model.get_submodule(path)
        if isinstance(node, nn.Sequential) and len(node) > 0:
            children = list(node.named_children())
            prefixes = [f"{path}.{cname}".lstrip(".") for cname, _ in children]
            first = next(
                i
                for i, pre in enumerate(prefixes)
                if any(n == pre or n.startswith(pre + ".") for n in names)
            )
            if first > 0 or depth > 0:
                tail = node if first == 0 else nn.Sequential(*[m for _, m in children[first:]])
                label = f"{path}[{first}:]" if path else f"[{first}:]"
                out.append((label, children[first][1], children[-1][1], tail))
                continue
        if depth > 0:
            out.append((path, node, node, node))
    return out


def find_head(
    model: nn.Module, x: torch.Tensor, head: str | nn.Module | None
) -> tuple[HeadPlan | None, tuple[tuple[Any, ...], dict[str, Any]] | None]:
    """Find (or check the given) head by one probe pass with dropout in eval.

    Returns the plan and the head input captured on ``x`` (so the probe
    doubles as the first batch's backbone pass), or ``(None, None)``.
    """
    drops = dropout_modules(model)
    if isinstance(head, (str, nn.Module)):
        mod = _named(model, head)
        inside = {id(m) for m in mod.modules()}
        outside = [n for n, m in drops if id(m) not in inside]
        if outside:
            raise InputError(
                f"head= must contain every dropout module; {outside[:5]} lie outside it. "
                "Pass a larger head, or head=False to sample the whole network."
            )
        label = head if isinstance(head, str) else type(head).__name__
        cands: list[tuple[str, nn.Module, nn.Module, Callable[..., Any]]] = [(label, mod, mod, mod)]
    elif not drops:
        return None, None
    else:
        cands = _candidates(model, [n for n, _ in drops])
    if not cands:
        return None, None
    calls: dict[int, list[Any]] = {i: [0, 0, None, None] for i in range(len(cands))}
    handles = []
    for i, (_, entry, exit_, _) in enumerate(cands):

        def pre(_m: nn.Module, args: Any, kwargs: Any, i: int = i) -> None:
            calls[i][0] += 1
            calls[i][2] = (args, kwargs)

        def post(_m: nn.Module, _a: Any, out: Any, i: int = i) -> None:
            calls[i][1] += 1
            calls[i][3] = out

        handles.append(entry.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(exit_.register_forward_hook(post))
    try:
        out = model(x)
    finally:
        for h in handles:
            h.remove()
    for i, (name, entry, _, run) in enumerate(cands):
        n_in, n_out, captured, h_out = calls[i]
        same = (
            n_in == 1
            and n_out == 1
            and (
                h_out is out
                or (
                    isinstance(h_out, torch.Tensor)
                    and isinstance(out, torch.Tensor)
                    and h_out.shape == out.shape
                    and torch.equal(h_out, out)
                )
            )
        )
        if same:
            return HeadPlan(name=name, entry=entry, run=run), captured
    if isinstance(head, (str, nn.Module)):
        raise InputError(
            f"head {cands[0][0]!r} cannot be cached: it must run exactly once per forward "
            "and its output must be the model's output."
        )
    return None, None


def _named(model: nn.Module, head: str | nn.Module) -> nn.Module:
    if isinstance(head, nn.Module):
        if not any(m is head for m in model.modules()):
            raise InputError("head= must be a submodule of the model.")
        return head
    try:
        return model.get_submodule(head)
    except AttributeError as exc:
        names = [n for n, _ in model.named_children()]
        raise InputError(f"the model has no submodule {head!r}; top-level: {names}.") from exc
