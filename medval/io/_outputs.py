"""One tensor of scores from a model whose forward returns a dict or a tuple.

``model.output_key = "logits"`` (a dict) or ``model.output_index = 0`` (a
tuple or list) wraps the module in :class:`SelectOutput`. Without either, a
dict or tuple output is refused at the first forward with the keys (or the
length) and the spec key to set. ``model.label_column = j`` then keeps one
column of a multi-label head's (batch, L) scores: the finding validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from medval._errors import InputError

__all__ = ["SelectOutput", "pick_column", "pick_output", "select_output"]

_SHOW = 8


def pick_output(out: Any, key: str | None, index: int | None, name: str) -> Any:
    """``out[key]``, ``out[index]``, or ``out`` itself when it is not a dict or tuple.

    Raises
    ------
    InputError
        A dict or tuple with no key/index to pick from it, a missing key, an
        index out of range, or a key/index for an output of the other shape.
    """
    what = f"model {name!r}" if name else "the model"
    is_dict, is_tuple = isinstance(out, Mapping), isinstance(out, (tuple, list))
    if key is not None:
        if not is_dict:
            fix = "use model.output_index" if is_tuple else "remove model.output_key"
            raise InputError(
                f"model.output_key = {key!r} but {what} returns a {type(out).__name__}, "
                f"not a dict; {fix}."
            )
        if key not in out:
            raise InputError(
                f"model.output_key = {key!r} but {what} returns a dict with keys "
                f"{_keys(out)}; set model.output_key to one of them."
            )
        return out[key]
    if index is not None:
        if not is_tuple:
            fix = "use model.output_key" if is_dict else "remove model.output_index"
            raise InputError(
                f"model.output_index = {index} but {what} returns a {type(out).__name__}, "
                f"not a tuple; {fix}."
            )
        if not 0 <= index < len(out):
            raise InputError(
                f"model.output_index = {index} but {what} returns {len(out)} outputs; set "
                f"model.output_index to 0..{len(out) - 1}."
            )
        return out[index]
    if is_dict:
        keys = _keys(out)
        first = keys[0] if keys else "logits"
        raise InputError(
            f"{what} returns a dict with keys {keys}, not one tensor of scores; name the one "
            f"to use: spec key model.output_key = {first!r} (load_model(output_key=...))."
        )
    if is_tuple:
        raise InputError(
            f"{what} returns a {type(out).__name__} of {len(out)} outputs, not one tensor of "
            "scores; pick the one to use: spec key model.output_index = 0 "
            "(load_model(output_index=...))."
        )
    return out


def pick_column(out: Any, column: int | None, name: str) -> Any:
    """Column ``column`` of (batch, L) scores as (batch, 1); ``out`` itself when None."""
    if column is None:
        return out
    what = f"model {name!r}" if name else "the model"
    shape = tuple(getattr(out, "shape", ()))
    if len(shape) != 2:
        raise InputError(
            f"model.label_column = {column} but {what} returns scores of shape {shape}, not "
            "(batch, L) labels; remove model.label_column."
        )
    if not 0 <= column < shape[1]:
        raise InputError(
            f"model.label_column = {column} but {what} returns {shape[1]} label scores; set "
            f"model.label_column to 0..{shape[1] - 1}."
        )
    return out[:, column : column + 1]


def _keys(out: Mapping[Any, Any]) -> list[str]:
    return sorted(map(str, out))[:_SHOW]


class SelectOutput(torch.nn.Module):
    """A model whose forward returns one entry of the wrapped model's dict or tuple output.

    Submodule names of the wrapped model work unprefixed in
    :meth:`get_submodule` (``model.embeddings = "backbone"``).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        key: str | None,
        index: int | None,
        name: str = "",
        column: int | None = None,
    ) -> None:
        super().__init__()
        self.wrapped = model
        self.key = key
        self.index = index
        self.name = name
        self.column = column

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = pick_output(self.wrapped(*args, **kwargs), self.key, self.index, self.name)
        return pick_column(out, self.column, self.name)

    def get_submodule(self, target: str) -> torch.nn.Module:
        try:
            return super().get_submodule(target)
        except AttributeError:
            return self.wrapped.get_submodule(target)

    def extra_repr(self) -> str:
        picked = f"key={self.key!r}" if self.key is not None else f"index={self.index!r}"
        return picked + ("" if self.column is None else f", column={self.column}")


def select_output(
    module: torch.nn.Module,
    *,
    key: str | None,
    index: int | None,
    name: str,
    column: int | None = None,
) -> torch.nn.Module:
    """The module returning one tensor: wrapped to pick ``key``/``index``/``column``, else guarded.

    The guard is a forward hook (the module and its submodule names stay as
    they are); a TorchScript module takes no hooks, so it is wrapped instead.
    """
    if key is not None and index is not None:
        raise InputError("give output_key or output_index, not both.")
    if key is not None or index is not None or column is not None:
        return SelectOutput(module, key=key, index=index, name=name, column=column)

    def guard(_m: torch.nn.Module, _args: Any, out: Any) -> None:
        pick_output(out, None, None, name)

    try:
        module.register_forward_hook(guard)
    except RuntimeError:  # "register_forward_hook is not supported on ScriptModules"
        return SelectOutput(module, key=None, index=None, name=name)
    return module
