"""CaseIds: the ids predict() keys MC dropout masks by and returns."""

from __future__ import annotations

import pytest

from medval import InputError
from medval.inference._ids import CaseIds


class _Loader(list):  # type: ignore[type-arg]
    dataset = type("D", (), {"case_ids": ["d0", "d1", "d2"]})()


def test_sources_in_order() -> None:
    given = CaseIds(["g0", "g1", "g2"], _Loader())
    assert given.take(2, ["b0", "b1"]) == ["g0", "g1"]  # case_ids= first, as in the result
    assert given.take(1, None) == ["g2"]
    assert list(given.final(3)) == ["g0", "g1", "g2"]
    carried = CaseIds(None, _Loader())
    assert carried.take(2, ["b0", "b1"]) == ["b0", "b1"]
    assert carried.take(1, ["b2"]) == ["b2"]
    assert list(carried.final(3)) == ["b0", "b1", "b2"]
    dataset = CaseIds(None, _Loader())
    assert dataset.take(2, None) == ["d0", "d1"]
    assert dataset.take(1, None) == ["d2"]
    assert list(dataset.final(3)) == ["d0", "d1", "d2"]
    position = CaseIds(None, [])
    assert position.take(2, None) == ["0", "1"]
    assert position.take(2, None) == ["2", "3"]
    assert list(position.final(4)) == ["0", "1", "2", "3"]


def test_errors() -> None:
    with pytest.raises(InputError, match=r"carries 1 case_id values for 2 inputs"):
        CaseIds(None, []).take(2, ["only"])
    ids = CaseIds(["a", "b", "c"], [])
    ids.take(2, None)
    with pytest.raises(InputError, match=r"case_ids has 3 ids but the loader yields more"):
        ids.take(2, None)
    with pytest.raises(InputError, match=r"loader.dataset.case_ids has 3 ids"):
        CaseIds(None, _Loader()).take(4, None)
    ids = CaseIds(None, [])
    ids.take(2, ["x", "y"])
    with pytest.raises(InputError, match=r"case_id has 2 ids but the model scored 3"):
        ids.final(3)
