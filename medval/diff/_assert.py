"""`assert_results_agree`: a pytest-friendly check that two runs agree."""

from __future__ import annotations

from collections.abc import Iterable

from medval.diff._compare import DEFAULT_TOLERANCE, Source, diff_results

__all__ = ["assert_results_agree"]


def assert_results_agree(
    a: Source,
    b: Source,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    keys: str | Iterable[str] | None = None,
    max_rows: int | None = 50,
) -> None:
    """Assert that two validation results agree (see :func:`diff_results`).

    Parameters
    ----------
    a, b : path or ValidationResult
    tolerance : float, default :data:`DEFAULT_TOLERANCE`
        ``|a - b| <= tolerance * max(1, |a|, |b|)``: absolute up to 1,
        relative above.
    keys : str or sequence of str, optional
        Glob patterns restricting the compared keys.
    max_rows : int or None, default 50
        Differences shown in the message (None: all).

    Raises
    ------
    AssertionError
        If the runs differ; the message is the readable table of
        :meth:`ResultDiff.table`, largest movement first.
    DataError, InputError
        As :func:`diff_results` (unreadable file, bad tolerance).
    """
    __tracebackhide__ = True
    diff = diff_results(a, b, tolerance=tolerance, keys=keys)
    if not diff.agree:
        raise AssertionError(diff.table(max_rows=max_rows))
