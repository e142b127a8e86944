"""Per-case dropout masks: the generator, torch's formulas, the hooks."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
from torch import nn

from medval import InputError
from medval.inference import DROPOUT_TYPES
from medval.inference._masks import CaseMasks, apply_mask, case_keys, keep_mask, noise_shape

_M64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15


def _mix_ref(z: int) -> int:
    """splitmix64's finaliser as published (Steele et al. 2014), in Python integers."""
    z &= _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _keep_ref(
    seed: int, case: str, t: int, call: int, stream: tuple[int, int], j: int, p: float
) -> bool:
    """One keep flag, computed independently of numpy."""
    key = int.from_bytes(
        hashlib.blake2b(f"{seed}\x00{case}".encode(), digest_size=8).digest(), "little"
    )
    salt = 0x6D6564766D61736B
    for v in (*stream, call):
        salt = _mix_ref(salt ^ v)
    row = _mix_ref(_mix_ref(((t + 1) * _GAMMA) ^ salt) ^ key)
    return (_mix_ref(row + (j + 1) * _GAMMA) >> 40) >= round(p * 2**24)


@pytest.fixture
def keys() -> np.ndarray:
    return case_keys(7, [f"case{i}" for i in range(5)])


def test_known_values_match_a_pure_integer_reference() -> None:
    ids = ["case-a", "case-b", "c"]
    got = keep_mask(case_keys(3, ids), first=4, count=2, call=1, stream=(2, 1), width=40, p=0.3)
    expected = [
        [_keep_ref(3, ids[r % 3], 4 + r // 3, 1, (2, 1), j, 0.3) for j in range(40)]
        for r in range(6)
    ]
    np.testing.assert_array_equal(got, expected)
    # pinned: the same bits on every machine and numpy version
    assert hex(int(case_keys(0, ["case-a"])[0])) == "0x409cbda259c7d090"
    first = keep_mask(
        case_keys(0, ["case-a"]), first=0, count=1, call=0, stream=(0, 0), width=16, p=0.5
    )
    assert "".join("1" if k else "0" for k in first[0]) == "1011110001111010"


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9])
def test_keep_rate_is_one_minus_p(keys: np.ndarray, p: float) -> None:
    flags = keep_mask(keys, first=0, count=40, call=0, stream=(0, 0), width=1000, p=p)
    n = flags.size
    bound = 5 * math.sqrt(p * (1 - p) / n)  # 5 binomial standard errors
    assert abs(flags.mean() - (1 - p)) < bound
    # neighbouring elements and rows are uncorrelated
    f = flags.astype(float)
    assert abs(np.corrcoef(f[:, :-1].ravel(), f[:, 1:].ravel())[0, 1]) < 5 / math.sqrt(n)
    assert abs(np.corrcoef(f[:-1].ravel(), f[1:].ravel())[0, 1]) < 5 / math.sqrt(n)


def test_masks_differ_by_case_sample_call_and_stream_and_repeat_by_key(keys: np.ndarray) -> None:
    def m(**kw: object) -> np.ndarray:
        args: dict[str, object] = dict(first=0, count=1, call=0, stream=(0, 0), width=256, p=0.5)
        args.update(kw)
        return keep_mask(keys, **args)  # type: ignore[arg-type]

    base = m()
    assert len({row.tobytes() for row in base}) == len(keys)  # cases differ
    for other in (m(first=1), m(call=1), m(stream=(1, 0)), m(stream=(0, 1))):
        assert not (other == base).all(axis=1).any()
    np.testing.assert_array_equal(m(), base)
    other_seed = keep_mask(
        case_keys(8, ["case0"]), first=0, count=1, call=0, stream=(0, 0), width=256, p=0.5
    )
    assert not np.array_equal(other_seed, base[:1])


def test_rows_follow_the_folded_layout(keys: np.ndarray) -> None:
    """Row r of a chunk is sample first + r // b of case r % b, whatever the chunk."""
    whole = keep_mask(keys, first=2, count=3, call=1, stream=(0, 0), width=20, p=0.4)
    b = len(keys)
    for r in range(3 * b):
        single = keep_mask(
            keys[[r % b]], first=2 + r // b, count=1, call=1, stream=(0, 0), width=20, p=0.4
        )
        np.testing.assert_array_equal(whole[r], single[0])


def _torch_train(module: nn.Module, x: torch.Tensor, seed: int) -> torch.Tensor:
    module.train()
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        return module(x.clone())


def _dropped_value(module: nn.Module) -> float:
    if isinstance(module, (nn.AlphaDropout, nn.FeatureAlphaDropout)):
        alpha, p = 1.7580993408473766, module.p
        a = ((1 - p) * (1 + p * alpha**2)) ** -0.5
        return -a * alpha + a * alpha * p
    return 0.0


_CASES = [  # (type, p, input shape)
    (nn.Dropout, 0.3, (6, 5, 4)),
    (nn.Dropout1d, 0.4, (6, 5, 7)),
    (nn.Dropout1d, 0.5, (6, 7)),  # unbatched in torch's reading: whole rows
    (nn.Dropout2d, 0.5, (6, 5, 4, 3)),
    (nn.Dropout3d, 0.2, (6, 5, 2, 3, 4)),
    (nn.Dropout3d, 0.5, (6, 2, 3, 4)),  # unbatched
    (nn.AlphaDropout, 0.2, (6, 50)),
    (nn.FeatureAlphaDropout, 0.3, (6, 5, 4, 4)),
]
_IDS = [f"{c.__name__}-{len(s)}d" for c, _, s in _CASES]


@pytest.mark.parametrize(("cls", "p", "shape"), _CASES, ids=_IDS)
@pytest.mark.parametrize("inplace", [False, True])
def test_apply_mask_equals_torch_for_torchs_mask(
    cls: type[nn.Module], p: float, shape: tuple[int, ...], inplace: bool, rng: np.random.Generator
) -> None:
    module = cls(p, inplace=inplace)
    x = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
    expected = _torch_train(module, x, seed=int(rng.integers(2**31)))
    full = ~torch.isclose(expected, torch.tensor(_dropped_value(module)), atol=1e-7)
    ns = noise_shape(module, x)
    keep = full[tuple(slice(0, 1) if n == 1 else slice(None) for n in ns)]
    assert keep.shape == ns
    assert torch.equal(keep.expand(shape), full)  # torch masks in the same shape
    assert 0 < keep.float().mean() < 1
    xin = x.clone()
    got = apply_mask(module.eval(), xin, keep)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert (got is xin) == inplace


def test_alpha_formula_as_written(rng: np.random.Generator) -> None:
    p, alpha = 0.25, -1.7580993408473766
    x = torch.from_numpy(rng.standard_normal((8, 30)).astype(np.float32))
    keep = torch.from_numpy(rng.random((8, 30)) > p)
    a = ((1 - p) * (1 + p * alpha**2)) ** -0.5
    b = -a * alpha * p
    k = keep.float()
    torch.testing.assert_close(
        apply_mask(nn.AlphaDropout(p), x, keep), a * (x * k + alpha * (1 - k)) + b
    )
    torch.testing.assert_close(apply_mask(nn.Dropout(p), x, keep), x * k / (1 - p))
    assert torch.equal(apply_mask(nn.Dropout(1.0), x, keep), torch.zeros_like(x))


def _hooked(module: nn.Module, x: torch.Tensor, keys: np.ndarray, count: int) -> torch.Tensor:
    net = nn.Sequential(module).eval()
    masks = CaseMasks(net)
    with masks.active(keys, (0, 0)) as begin, torch.no_grad():
        begin(0, count)
        out: torch.Tensor = net(x)
    assert not module._forward_hooks  # removed on exit
    return out


@pytest.mark.parametrize("cls", [nn.AlphaDropout, nn.FeatureAlphaDropout])
def test_alpha_dropout_keeps_mean_and_variance_like_torch(
    cls: type[nn.Module], rng: np.random.Generator
) -> None:
    keys = case_keys(0, [str(i) for i in range(50)])
    x = torch.from_numpy(rng.standard_normal((400, 128, 8)).astype(np.float32))
    ours = _hooked(cls(0.2), x, keys, count=8)
    theirs = _torch_train(cls(0.2), x, seed=int(rng.integers(2**31)))
    # about 5 standard errors (51,200 channels of 8 for the feature variant)
    for stat in (torch.mean, torch.var):
        assert abs(float(stat(ours)) - float(stat(theirs))) < 0.03
    assert abs(float(ours.mean())) < 0.025 and abs(float(ours.var()) - 1) < 0.03


@pytest.mark.parametrize("cls", [nn.Dropout, nn.Dropout2d])
def test_dropout_scale_and_rate_like_torch(cls: type[nn.Module], rng: np.random.Generator) -> None:
    keys = case_keys(0, [str(i) for i in range(100)])
    x = torch.ones(400, 32, 4, 4)
    ours = _hooked(cls(0.3), x, keys, count=4)
    theirs = _torch_train(cls(0.3), x, seed=int(rng.integers(2**31)))
    assert set(torch.unique(ours).tolist()) == set(torch.unique(theirs).tolist())  # {0, 1/(1-p)}
    n = 400 * 32 if cls is nn.Dropout2d else x.numel()
    assert abs(float((ours != 0).float().mean()) - 0.7) < 5 * math.sqrt(0.21 / n)
    assert abs(float(ours.mean()) - 1) < 0.05


def test_p_zero_is_the_identity() -> None:
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(_hooked(nn.Dropout(0.0), x, case_keys(0, ["a", "b", "c"]), count=2), x)


def test_input_without_the_batch_first_is_refused() -> None:
    x = torch.ones(3, 6)  # 6 rows expected (2 samples x 3 cases), batch in dim 1
    with pytest.raises(InputError, match=r"'0'.*batch as the first dimension"):
        _hooked(nn.Dropout(0.5), x, case_keys(0, ["a", "b", "c"]), count=2)
    with pytest.raises(InputError, match=r"Dropout2d drops channels.*\(batch, channels"):
        noise_shape(nn.Dropout2d(), torch.ones(6))


@pytest.mark.parametrize(("cls", "p", "shape"), _CASES, ids=_IDS)
def test_hooks_apply_the_case_masks(cls: type[nn.Module], p: float, shape: tuple[int, ...]) -> None:
    module = cls(p)
    keys = case_keys(1, ["a", "b", "c"])
    x = torch.arange(1, math.prod(shape) + 1, dtype=torch.float32).reshape(shape)
    ns = noise_shape(module, x)
    flags = keep_mask(keys, first=0, count=2, call=0, stream=(0, 0), width=math.prod(ns[1:]), p=p)
    expected = apply_mask(module, x.clone(), torch.from_numpy(flags.reshape(ns)))
    torch.testing.assert_close(_hooked(module, x.clone(), keys, count=2), expected)
    assert not torch.equal(expected, x)


class _Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.drop(x), self.drop(x)])


def test_a_module_called_twice_gets_two_masks() -> None:
    out = _hooked(_Twice(), torch.ones(4, 64), case_keys(0, ["a", "b"]), count=2)
    assert not torch.equal(out[0], out[1])


def test_the_cases_cover_every_dropout_type() -> None:
    assert {c for c, _, _ in _CASES} == set(DROPOUT_TYPES)
