"""MC dropout plumbing: finding dropout modules and the trailing head to cache."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
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


_Candidate = tuple[str, nn.Module, nn.Module, Callable[..., Any]]


def _candidates(model: nn.Module, names: list[str]) -> list[_Candidate]:
    """(name, entry, exit, runner) from the deepest common ancestor up to the root."""
    parts = [n.split(".") for n in names]
    common: list[str] = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    out: list[_Candidate] = []
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


class _Chain:
    """Runs modules one after another, each on the previous one's output."""

    def __init__(self, modules: list[nn.Module]) -> None:
        self.modules = modules

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.modules[0](*args, **kwargs)
        for m in self.modules[1:]:
            out = m(out)
        return out


class _Recorder:
    """Probe hooks: calls of the candidate heads and of the root's direct calls."""

    def __init__(self, model: nn.Module, cands: list[_Candidate]) -> None:
        self.calls: list[list[Any]] = [[0, 0, None, None] for _ in cands]
        self.top: list[list[Any]] = []  # [module, args, kwargs, output] of depth-1 calls
        self.count: dict[int, int] = {}
        self.depth = 0
        self.handles: list[Any] = []
        for i, (_, entry, exit_, _) in enumerate(cands):
            self.handles.append(
                entry.register_forward_pre_hook(self._cand_pre(i), with_kwargs=True)
            )
            self.handles.append(exit_.register_forward_hook(self._cand_post(i)))
        self.complete = True  # False when a submodule takes no hooks (TorchScript)
        for m in model.modules():
            if m is model:
                continue
            try:
                self.handles.append(m.register_forward_pre_hook(self._pre, with_kwargs=True))
                self.handles.append(m.register_forward_hook(self._post))
            except RuntimeError:
                self.complete = False

    def _cand_pre(self, i: int) -> Callable[..., None]:
        def pre(_m: nn.Module, args: Any, kwargs: Any) -> None:
            self.calls[i][0] += 1
            self.calls[i][2] = (args, kwargs)

        return pre

    def _cand_post(self, i: int) -> Callable[..., None]:
        def post(_m: nn.Module, _a: Any, out: Any) -> None:
            self.calls[i][1] += 1
            self.calls[i][3] = out

        return post

    def _pre(self, m: nn.Module, args: Any, kwargs: Any) -> None:
        self.depth += 1
        self.count[id(m)] = self.count.get(id(m), 0) + 1
        if self.depth == 1:
            self.top.append([m, args, kwargs, None])

    def _post(self, _m: nn.Module, _a: Any, out: Any) -> None:
        if self.depth == 1:
            self.top[-1][3] = out
        self.depth -= 1

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    return (
        isinstance(a, torch.Tensor)
        and isinstance(b, torch.Tensor)
        and a.shape == b.shape
        and bool(torch.allclose(a, b, rtol=1e-5, atol=1e-6))
    )


def _replays(run: Callable[..., Any], captured: tuple[Any, Any], out: Any) -> bool:
    """The head recomputes the model output from its cached input (dropout in eval)."""
    args, kwargs = captured
    copies = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
    try:
        return _same(run(*copies, **kwargs), out)
    except Exception:  # a structural mismatch (shapes, arity): not a head
        return False


def _chain_plan(
    model: nn.Module,
    rec: _Recorder,
    drops: list[tuple[str, nn.Module]],
    out: Any,
    required: list[nn.Module] | None,
) -> tuple[HeadPlan, tuple[Any, Any]] | None:
    """The shortest tail of the root's direct calls that holds every dropout module.

    Each call must take the previous call's output as its only input and
    the last must return the model's output, so that nothing the forward
    does between them is skipped (``head(dropout(z))`` in a custom forward).
    """
    if not rec.complete:
        return None
    top = rec.top
    drop_ids = {id(m) for _, m in drops}
    holds = [{id(d) for d in call[0].modules()} & drop_ids for call in top]
    start: int | None = None
    if required is None:
        covered: set[int] = set()
        for i in range(len(top) - 1, -1, -1):
            covered |= holds[i]
            if covered == drop_ids:
                start = i
                break
    elif len(top) >= len(required) and all(
        c[0] is m for c, m in zip(top[len(top) - len(required) :], required, strict=True)
    ):
        start = len(top) - len(required)
    if start is None or any(holds[:start]):
        return None
    tail = top[start:]
    mods = [c[0] for c in tail]
    if any(rec.count[id(m)] != 1 for m in mods):
        return None
    for prev, cur in itertools.pairwise(tail):
        if cur[2] or len(cur[1]) != 1 or cur[1][0] is not prev[3]:
            return None
    if not _same(tail[-1][3], out):
        return None
    run = _Chain(mods)
    captured = (tail[0][1], tail[0][2])
    if not _replays(run, captured, out):
        return None
    names = {id(m): n for n, m in model.named_modules()}
    label = "[" + ", ".join(names.get(id(m), type(m).__name__) for m in mods) + "]"
    return HeadPlan(name=label, entry=mods[0], run=run), captured


def find_head(
    model: nn.Module, x: torch.Tensor, head: str | nn.Module | Sequence[str] | None
) -> tuple[HeadPlan | None, tuple[tuple[Any, ...], dict[str, Any]] | None]:
    """Find (or check the given) head by one probe pass with dropout in eval.

    Tried in order: the deepest submodule (or ``nn.Sequential`` tail) that
    holds every dropout module and returns the model's output, then a chain
    of the root's last direct calls (``self.fc(self.drop(z))``). Every
    candidate must recompute the model's output from its cached input.

    Returns the plan and the head input captured on ``x`` (so the probe
    doubles as the first batch's backbone pass), or ``(None, None)``.
    """
    drops = dropout_modules(model)
    required: list[nn.Module] | None = None
    names: list[str] = []
    cands: list[_Candidate]
    if isinstance(head, (str, nn.Module)):
        mod = _named(model, head)
        _check_holds([mod], drops)
        label = head if isinstance(head, str) else type(head).__name__
        cands = [(label, mod, mod, mod)]
    elif head is not None:
        names = list(head)
        if not names or not all(isinstance(n, str) for n in names):
            raise InputError(
                "head= takes a submodule name, a module, a list of submodule names (a chain "
                f"called one after another at the end of forward), True or False; got {head!r}."
            )
        required = [_named(model, n) for n in names]
        _check_holds(required, drops)
        cands = []
    elif not drops:
        return None, None
    else:
        cands = _candidates(model, [n for n, _ in drops])
    rec = _Recorder(model, cands)
    try:
        out = model(x)
    finally:
        rec.remove()
    for i, (_, _, _, run) in enumerate(cands):
        n_in, n_out, captured, h_out = rec.calls[i]
        if n_in == 1 and n_out == 1 and _same(h_out, out) and _replays(run, captured, out):
            return HeadPlan(name=cands[i][0], entry=cands[i][1], run=run), captured
    if cands and isinstance(head, (str, nn.Module)):
        raise InputError(
            f"head {cands[0][0]!r} cannot be cached: it must run exactly once per forward "
            "and its output must be the model's output."
        )
    chain = _chain_plan(model, rec, drops, out, required)
    if chain is not None:
        return chain
    if required is not None:
        raise InputError(
            f"head={names!r} cannot be cached: these modules must be the last ones "
            "the model's forward calls, each once, each on the previous one's output, the "
            "last returning the model's output."
        )
    return None, None


def _check_holds(mods: list[nn.Module], drops: list[tuple[str, nn.Module]]) -> None:
    inside = {id(m) for mod in mods for m in mod.modules()}
    outside = [n for n, m in drops if id(m) not in inside]
    if outside:
        raise InputError(
            f"head= must contain every dropout module; {outside[:5]} lie outside it. "
            "Pass a larger head, or head=False to sample the whole network."
        )


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
