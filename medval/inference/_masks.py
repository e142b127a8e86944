"""MC dropout masks keyed per case: the same samples whatever the batching.

A case's dropout masks come from a counter-based generator (Salmon et al.
2011, "Parallel random numbers: as easy as 1, 2, 3", SC'11): an integer hash
of (run seed, case id, stream, dropout call, sample index, element index).
The hash is splitmix64's finaliser (Steele, Lea and Flood 2014, "Fast
splittable pseudorandom number generators", OOPSLA), in numpy ``uint64``
arithmetic only, so masks are identical on every CPU and do not depend on
how cases are batched, ordered, chunked or spread over workers.

During sampling the dropout modules stay in eval mode (the identity) and
forward hooks replace their outputs with torch's own formulas applied to
these masks; torch's random generators are not used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from medval._errors import InputError
from medval.inference._head import dropout_modules

__all__ = ["CaseMasks", "apply_mask", "case_keys", "keep_mask", "noise_shape"]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # splitmix64's increment (golden ratio)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SALT = 0x6D6564766D61736B  # "medvmask": separates this use of the hash from others
_BITS = 24  # uniforms are 24-bit integers: p is resolved to 2**-24
_BLOCK = 1 << 15  # elements hashed at a time: temporaries stay in cache
_MASK64 = (1 << 64) - 1
_S27, _S30, _S31, _SU = (np.uint64(s) for s in (27, 30, 31, 64 - _BITS))
_SELU_ALPHA = 1.7580993408473766  # -alpha' of torch's alpha dropout (SELU's alpha * scale)

_FEATURE = (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.FeatureAlphaDropout)
_ALPHA = (nn.AlphaDropout, nn.FeatureAlphaDropout)

U64 = NDArray[np.uint64]


def _mix(z: U64, tmp: U64 | None = None) -> U64:
    """splitmix64's finaliser, in place on a uint64 array (wrapping arithmetic)."""
    tmp = np.empty_like(z) if tmp is None else tmp
    np.bitwise_xor(z, np.right_shift(z, _S30, out=tmp), out=z)
    np.multiply(z, _M1, out=z)
    np.bitwise_xor(z, np.right_shift(z, _S27, out=tmp), out=z)
    np.multiply(z, _M2, out=z)
    np.bitwise_xor(z, np.right_shift(z, _S31, out=tmp), out=z)
    return z


def _mix_int(z: int) -> int:
    """:func:`_mix` on one Python integer (same bits)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * int(_M1)) & _MASK64
    z = ((z ^ (z >> 27)) * int(_M2)) & _MASK64
    return z ^ (z >> 31)


def case_keys(seed: int, case_ids: Sequence[str]) -> U64:
    """64-bit keys of shape (b,): BLAKE2b of ``f"{seed}\\0{case_id}"``."""
    keys = [
        int.from_bytes(hashlib.blake2b(f"{seed}\x00{c}".encode(), digest_size=8).digest(), "little")
        for c in case_ids
    ]
    return np.array(keys, dtype=np.uint64)


def keep_mask(
    keys: U64,
    *,
    first: int,
    count: int,
    call: int,
    stream: tuple[int, ...],
    width: int,
    p: float,
) -> NDArray[np.bool_]:
    """Keep flags of shape (count * b, width) for b = ``len(keys)`` cases.

    Row ``r`` is MC sample ``first + r // b`` of case ``r % b`` (the folded
    batch layout); ``call`` counts the dropout calls of one forward pass and
    ``stream`` (ensemble member, augmentation) separates independent runs.
    An element is kept with probability ``1 - round(p * 2**24) / 2**24``.
    """
    salt = _SALT
    for v in (*stream, call):
        salt = _mix_int(salt ^ v)
    t = np.arange(first + 1, first + count + 1, dtype=np.uint64)
    per_sample = _mix((t * _GAMMA) ^ np.uint64(salt))
    rows = _mix((per_sample[:, None] ^ keys[None, :]).reshape(-1))
    cols = np.arange(1, width + 1, dtype=np.uint64) * _GAMMA
    threshold = np.uint64(round(p * 2**_BITS))
    out = np.empty((len(rows), width), dtype=np.bool_)
    rb, cb = max(1, _BLOCK // max(width, 1)), max(1, min(width, _BLOCK))
    z = np.empty(rb * cb, dtype=np.uint64)
    tmp = np.empty_like(z)
    for r in range(0, len(rows), rb):
        for c in range(0, width, cb):
            block = out[r : r + rb, c : c + cb]
            zb = z[: block.size].reshape(block.shape)
            np.add(rows[r : r + rb, None], cols[None, c : c + cb], out=zb)
            _mix(zb, tmp[: block.size].reshape(block.shape))
            np.greater_equal(np.right_shift(zb, _SU, out=zb), threshold, out=block)
    return out


def noise_shape(module: nn.Module, x: torch.Tensor) -> tuple[int, ...]:
    """The mask shape torch's train-mode ``module`` draws for input ``x``.

    Element-wise for Dropout and AlphaDropout; one flag per (row, channel)
    for the feature variants, per row when torch reads the input as
    unbatched (2-D into Dropout1d, not 5-D into Dropout3d).

    Raises
    ------
    InputError
        A feature dropout input with fewer than 2 dimensions.
    """
    if not isinstance(module, _FEATURE):
        return tuple(x.shape)
    nd = x.ndim
    if (isinstance(module, nn.Dropout1d) and nd == 2) or (
        isinstance(module, nn.Dropout3d) and nd != 5
    ):
        return (x.shape[0],) + (1,) * (nd - 1)
    if nd < 2:
        raise InputError(
            f"{type(module).__name__} drops channels and needs a (batch, channels, ...) input; "
            f"got shape {tuple(x.shape)}."
        )
    return (x.shape[0], x.shape[1]) + (1,) * (nd - 2)


def apply_mask(module: nn.Module, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Torch's train-mode output of dropout ``module`` on ``x`` for the flags ``keep``.

    ``keep`` broadcasts against ``x`` (shape :func:`noise_shape`). Same
    operations in the same order as ATen's ``_dropout_impl``: ``x * keep /
    (1 - p)``, or for alpha dropout ``a * (x * keep + alpha' * (1 - keep)) + b``
    with ``alpha' = -1.7580993408473766``, ``a = ((1 - p)(1 + p alpha'^2))^-1/2``
    and ``b = -a alpha' p`` (Klambauer et al. 2017, "Self-normalizing neural
    networks"). Honours ``inplace``.
    """
    p = float(getattr(module, "p", 0.5))
    inplace = bool(getattr(module, "inplace", False))
    if p == 1.0:
        return x.mul_(0.0) if inplace else x * 0.0
    noise = keep.to(dtype=x.dtype)
    if isinstance(module, _ALPHA):
        a = 1.0 / math.sqrt((_SELU_ALPHA * _SELU_ALPHA * p + 1) * (1 - p))
        b = noise.add(-1).mul_(_SELU_ALPHA * a).add_(_SELU_ALPHA * a * p)
        noise.mul_(a)
        return x.mul_(noise).add_(b) if inplace else (x * noise).add_(b)
    noise.div_(1 - p)
    return x.mul_(noise) if inplace else x * noise


@dataclasses.dataclass
class _Pass:
    """What the hooks need to know about the forward pass under way."""

    keys: U64  # (b,) case keys
    stream: tuple[int, ...]
    first: int = 0  # first MC sample index of this forward
    count: int = 0  # MC samples folded into this forward
    calls: int = 0  # dropout calls so far in this forward


class CaseMasks:
    """Forward hooks that give a model's dropout modules per-case masks.

    The modules stay in eval mode; while :meth:`active`, each call's output
    is replaced by :func:`apply_mask` with flags from :func:`keep_mask`.
    Every dropout input must have the folded batch (samples x cases) as its
    first dimension.
    """

    def __init__(self, model: nn.Module) -> None:
        self.modules = dropout_modules(model)
        self.run: _Pass | None = None

    @contextlib.contextmanager
    def active(self, keys: U64, stream: tuple[int, ...]) -> Iterator[Callable[[int, int], None]]:
        """Hooks on for one batch; yields ``begin(first, count)``, to call before each forward."""
        handles = [
            m.register_forward_hook(self._hook(name), with_kwargs=True) for name, m in self.modules
        ]
        self.run = _Pass(keys=keys, stream=stream)
        try:
            yield self._begin
        finally:
            self.run = None
            for h in handles:
                h.remove()

    def _begin(self, first: int, count: int) -> None:
        if self.run is not None:
            self.run.first, self.run.count, self.run.calls = first, count, 0

    def _hook(self, name: str) -> Callable[..., Any]:
        def hook(m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Any:
            run = self.run
            if run is None:
                return None
            call = run.calls
            run.calls += 1
            x = args[0] if args else kwargs.get("input")
            if not isinstance(x, torch.Tensor):
                return None
            rows = run.count * len(run.keys)
            if x.ndim == 0 or x.shape[0] != rows:
                raise InputError(
                    f"dropout module {name!r} got an input of shape {tuple(x.shape)}; MC dropout "
                    "needs the batch as the first dimension of every dropout input (here "
                    f"{rows} rows = {run.count} samples x {len(run.keys)} cases). Put the batch "
                    "first (batch_first=True for sequence models)."
                )
            p = float(getattr(m, "p", 0.5))
            if p == 0.0:
                return None
            shape = noise_shape(m, x)
            width = math.prod(shape[1:])
            flags = keep_mask(
                run.keys,
                first=run.first,
                count=run.count,
                call=call,
                stream=run.stream,
                width=width,
                p=p,
            )
            keep = torch.from_numpy(flags.reshape(shape)).to(x.device)
            return apply_mask(m, x, keep)

        return hook
