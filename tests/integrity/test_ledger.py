"""The test-set usage ledger: round trip, every kind of tampering, locking, usage counts."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import re
from pathlib import Path

import pytest

from medval._errors import InputError
from medval._result import canonical_json
from medval.integrity import (
    LEDGER_FILE,
    Ledger,
    LedgerEntry,
    append_entry,
    ledger_anchor,
    read_ledger,
    start_ledger,
    usage,
    verify_ledger,
)

PROTOCOL = hashlib.sha256(b"protocol").hexdigest()
REGISTRATION = hashlib.sha256(b"registration").hexdigest()
KEY = b"ledger test key"
T0 = dt.datetime(2026, 11, 2, 9, 30, 15, tzinfo=dt.UTC)


def _model(i: int) -> str:
    return hashlib.sha256(f"model {i}".encode()).hexdigest()


def _append(path: Path, i: int, *, key: bytes | None = None, **over: object) -> LedgerEntry:
    fields: dict[str, object] = {
        "kind": "evaluated",
        "protocol_sha256": PROTOCOL,
        "model_sha256": _model(i % 3),
        "verdict": "pass" if i % 2 else "fail",
        "revealed": ("discrimination.auroc", f"split.external.calibration.ece{i}"),
        "splits": ("test", "external"),
        "holdout": None,
        "signing_key": key,
        "now": T0 + dt.timedelta(days=i),
    }
    fields.update(over)
    return append_entry(path, **fields)  # type: ignore[arg-type]


def _ledger(tmp_path: Path, n: int = 4, *, key: bytes | None = None) -> Path:
    path = tmp_path / LEDGER_FILE
    start_ledger(
        path, protocol_sha256=PROTOCOL, registration_sha256=REGISTRATION, signing_key=key, now=T0
    )
    for i in range(1, n + 1):
        _append(path, i, key=key)
    return path


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="ascii").splitlines(keepends=True)


def _problems(path: Path, **kw: object) -> str:
    check = verify_ledger(path, signing_key=kw.pop("key", None), **kw)  # type: ignore[arg-type]
    assert not check.ok and check.problems
    return "\n".join(check.problems)


def _rehash(data: dict[str, object]) -> dict[str, object]:
    """What a forger without the key does: recompute the entry's SHA-256 after an edit."""
    content = {k: v for k, v in data.items() if k not in ("entry_sha256", "hmac_sha256")}
    data["entry_sha256"] = hashlib.sha256(canonical_json(content).encode()).hexdigest()
    return data


def test_round_trip(tmp_path: Path) -> None:
    path = _ledger(tmp_path, 3)
    holdout = {"answers": 4, "noise_scale": 0.05, "budget_left": [3, 2]}
    last = _append(path, 4, kind="judged", holdout=holdout, model_sha256=None, verdict="none")
    ledger = read_ledger(tmp_path, signing_key=None)  # the folder works too
    assert [e.seq for e in ledger.entries] == [0, 1, 2, 3, 4]
    assert ledger.head == last and ledger.head.holdout == holdout
    assert ledger.entries[0].kind == "registered"
    assert ledger.entries[0].registration_sha256 == REGISTRATION
    assert ledger.entries[2].time == "2026-11-04T09:30:15Z"
    assert ledger.entries[1].revealed == ("discrimination.auroc", "split.external.calibration.ece1")
    pairs = zip(ledger.entries[:-1], ledger.entries[1:], strict=True)
    assert all(b.prev_sha256 == a.entry_sha256 for a, b in pairs)
    check = verify_ledger(path, signing_key=None, expected_head=(4, last.entry_sha256))
    assert check.ok and check.n_entries == 5 and check.head_seq == 4
    assert check.head_sha256 == last.entry_sha256
    assert ledger_anchor(last) == {
        "file": LEDGER_FILE, "head_seq": 4, "head_sha256": last.entry_sha256
    }  # fmt: skip
    # entry_sha256 is the SHA-256 of the canonical JSON of the other fields
    data = json.loads(_lines(path)[2])
    assert _rehash(dict(data)) == data


def test_start_refuses_an_existing_ledger(tmp_path: Path) -> None:
    path = _ledger(tmp_path, 1)
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"already exists.*never restarted"):
        start_ledger(path, protocol_sha256=PROTOCOL, registration_sha256=REGISTRATION,
                     signing_key=None)  # fmt: skip
    assert path.read_bytes() == before


def test_removed_middle_entry(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    lines = _lines(path)
    path.write_text("".join(lines[:2] + lines[3:]), encoding="ascii")
    assert "seq 2 missing: 1 entry was removed" in _problems(path)


def test_edited_verdict(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    lines = _lines(path)
    assert '"verdict": "fail"' in lines[2]
    lines[2] = lines[2].replace('"verdict": "fail"', '"verdict": "pass"')
    path.write_text("".join(lines), encoding="ascii")
    assert "line 3 (seq 2) was edited" in _problems(path)


def test_edited_and_rehashed_entry_breaks_the_next_link(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    lines = _lines(path)
    data = json.loads(lines[2])
    data["verdict"] = "pass"
    lines[2] = json.dumps(_rehash(data)) + "\n"
    path.write_text("".join(lines), encoding="ascii")
    problems = _problems(path)
    assert "line 4 (seq 3) does not link to seq 2" in problems and "edited" not in problems


def test_rehashed_head_needs_the_key_or_an_anchor(tmp_path: Path) -> None:
    """Editing and re-hashing the newest entry leaves a valid chain: only HMAC or anchor see it."""
    path = _ledger(tmp_path, key=KEY)
    head = read_ledger(path, signing_key=KEY).head
    lines = _lines(path)
    data = json.loads(lines[-1])
    data["verdict"] = "pass"
    lines[-1] = json.dumps(_rehash(data)) + "\n"
    path.write_text("".join(lines), encoding="ascii")
    assert verify_ledger(path, signing_key=None).ok  # the chain alone cannot tell
    assert "HMAC does not match the signing key" in _problems(path, key=KEY)
    anchor = (head.seq, head.entry_sha256)
    assert "rewritten since that run" in _problems(path, expected_head=anchor)


def test_swapped_lines(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    lines = _lines(path)
    lines[2], lines[3] = lines[3], lines[2]
    path.write_text("".join(lines), encoding="ascii")
    check = verify_ledger(path, signing_key=None)
    assert check.problems == ("line 4 holds seq 2 after seq 3: entries were reordered",)


def test_deleted_genesis(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    path.write_text("".join(_lines(path)[1:]), encoding="ascii")
    assert "genesis entry (seq 0, written by medval register) is missing" in _problems(path)


def test_forged_genesis(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    lines = _lines(path)
    data = json.loads(lines[0])
    data["kind"] = "evaluated"
    lines[0] = json.dumps(_rehash(data)) + "\n"
    path.write_text("".join(lines), encoding="ascii")
    assert "only seq 0, the genesis, is 'registered'" in _problems(path)


def test_truncated_tail_is_seen_only_with_an_anchor(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    head = read_ledger(path, signing_key=None).head
    path.write_text("".join(_lines(path)[:-2]), encoding="ascii")
    assert verify_ledger(path, signing_key=None).ok  # a shorter chain is a valid chain
    problems = _problems(path, expected_head=(head.seq, head.entry_sha256))
    assert "anchor names seq 4, but the ledger ends at seq 2" in problems
    assert "truncated" in problems


def test_anchor_of_an_older_run_still_holds(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    second = read_ledger(path, signing_key=None).entries[2]
    assert verify_ledger(path, signing_key=None, expected_head=(2, second.entry_sha256)).ok


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("{not json\n", "line 3 is not a ledger entry"),
        ("[1, 2]\n", r"line 3 is not a ledger entry \(a JSON list"),
        ("\n", "line 3 is not a ledger entry"),
        ('{"seq": 2}\n', r"line 3 is not a ledger entry \(missing fields"),
    ],
)
def test_malformed_line(tmp_path: Path, line: str, match: str) -> None:
    path = _ledger(tmp_path)
    lines = _lines(path)
    lines[2] = line
    path.write_text("".join(lines), encoding="ascii")
    problems = _problems(path)
    assert re.search(match, problems), problems


def test_unknown_field_and_cut_off_line(tmp_path: Path) -> None:
    path = _ledger(tmp_path, 2)
    lines = _lines(path)
    data = json.loads(lines[1])
    data["patient"] = "x"
    path.write_text(lines[0] + json.dumps(data) + "\n" + lines[2].rstrip("\n"), encoding="ascii")
    problems = _problems(path)
    assert "unknown fields ['patient']" in problems
    assert "line 3 has no line end" in problems


def test_empty_ledger(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_FILE
    path.write_bytes(b"")
    assert "the ledger is empty" in _problems(path)


def test_hmac_with_without_and_wrong_key(tmp_path: Path) -> None:
    (tmp_path / "signed").mkdir()
    signed = _ledger(tmp_path / "signed", key=KEY)
    assert verify_ledger(signed, signing_key=KEY).ok
    assert verify_ledger(signed, signing_key=None).ok  # cannot check, nothing inconsistent
    assert "HMAC does not match the signing key" in _problems(signed, key=b"another key")
    (tmp_path / "plain").mkdir()
    plain = _ledger(tmp_path / "plain")
    assert "carries no HMAC, but a signing key is set" in _problems(plain, key=KEY)
    # a stripped signature shows even without the key: signed and unsigned lines mixed
    lines = _lines(signed)
    data = json.loads(lines[2])
    del data["hmac_sha256"]
    lines[2] = json.dumps(data) + "\n"
    signed.write_text("".join(lines), encoding="ascii")
    assert "lines 3 carry no HMAC while lines 1-2, 4-5 do" in _problems(signed)


def test_append_refuses_a_broken_ledger(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    lines = _lines(path)
    path.write_text("".join(lines[:2] + lines[3:]), encoding="ascii")
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"not intact, so nothing was appended: seq 2 missing.*"
                       r"medval ledger verify .*restore it from a backup"):  # fmt: skip
        _append(path, 9)
    assert path.read_bytes() == before


def test_append_refuses_a_signed_ledger_without_key(tmp_path: Path) -> None:
    path = _ledger(tmp_path, 1, key=KEY)
    with pytest.raises(InputError, match="is signed, but no signing key is set"):
        _append(path, 2)
    with pytest.raises(InputError, match="HMAC does not match"):
        _append(path, 2, key=b"another key")


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"kind": "registered"}, "the genesis entry is written by start_ledger"),
        ({"verdict": "passed"}, "verdict must be one of"),
        ({"model_sha256": "/data/model.pt"}, r"model_sha256 must be a SHA-256"),
        ({"protocol_sha256": PROTOCOL.upper()}, r"protocol_sha256 must be a SHA-256"),
        ({"revealed": ("/home/ann/scan_0001.dcm",)}, r"revealed takes key names"),
        ({"revealed": "discrimination.auroc"}, r"revealed must be a list of key names"),
        ({"splits": ("C:\\data\\test",)}, r"splits takes key names"),
        ({"splits": ("~ann",)}, r"splits takes key names"),
        ({"splits": ("test\nforged",)}, r"splits takes key names"),
        ({"holdout": {"file": "/tmp/x"}}, r"holdout\.file takes key names"),
        ({"holdout": {"x": float("nan")}}, r"holdout\.x must be finite"),
        ({"holdout": {"x": object()}}, r"holdout\.x must be JSON-native"),
        ({"now": dt.datetime(2026, 11, 2)}, "needs a time zone"),
    ],
)
def test_append_refuses_bad_fields(tmp_path: Path, over: dict[str, object], match: str) -> None:
    path = _ledger(tmp_path, 1)
    before = path.read_bytes()
    with pytest.raises(InputError, match=match):
        _append(path, 2, **over)  # type: ignore[arg-type]
    assert path.read_bytes() == before


def test_missing_ledger(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no test-set ledger at .*medval register"):
        _append(tmp_path / LEDGER_FILE, 1)
    with pytest.raises(InputError, match="no test-set ledger at"):
        verify_ledger(tmp_path, signing_key=None)


def test_read_refuses_a_broken_ledger(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    path.write_text("".join(_lines(path)[1:]), encoding="ascii")
    with pytest.raises(InputError, match="its usage cannot be trusted: the genesis entry"):
        read_ledger(path, signing_key=None)


def test_no_absolute_path_is_stored(tmp_path: Path) -> None:
    path = _ledger(tmp_path, 3, key=KEY)
    _append(path, 4, holdout={"answers": 2}, signing_key=KEY)
    text = path.read_text(encoding="ascii")
    assert str(tmp_path) not in text and "\\" not in text

    def strings(value: object) -> list[str]:
        if isinstance(value, dict):
            return [*value, *(s for v in value.values() for s in strings(v))]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []

    found = [s for line in text.splitlines() for s in strings(json.loads(line))]
    assert found and not [s for s in found if "/" in s or s.startswith("~")]


def _worker(path: str, tag: int, n: int) -> None:
    for i in range(n):
        append_entry(
            path, kind="evaluated", protocol_sha256=PROTOCOL, model_sha256=_model(tag),
            verdict="pass", revealed=(f"worker{tag}.n{i}",), splits=("test",), signing_key=KEY,
        )  # fmt: skip


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_FILE
    start_ledger(path, protocol_sha256=PROTOCOL, registration_sha256=REGISTRATION,
                 signing_key=KEY)  # fmt: skip
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_worker, args=(str(path), tag, 30)) for tag in (1, 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    assert verify_ledger(path, signing_key=KEY).ok
    ledger = read_ledger(path, signing_key=KEY)
    assert [e.seq for e in ledger.entries] == list(range(61))
    revealed = {e.revealed[0] for e in ledger.evaluations}
    assert revealed == {f"worker{t}.n{i}" for t in (1, 2) for i in range(30)}
    for tag in (1, 2):  # each worker's entries in its own order
        mine = [e.revealed[0] for e in ledger.evaluations if e.model_sha256 == _model(tag)]
        assert mine == [f"worker{tag}.n{i}" for i in range(30)]


def _usage_ledger(tmp_path: Path, n: int, n_models: int) -> Ledger:
    path = _ledger(tmp_path, 0)
    kinds = ("evaluated", "judged", "rejudged")
    for i in range(n):
        _append(path, i + 1, kind=kinds[i % 3], model_sha256=_model(i % n_models))
    return read_ledger(path, signing_key=None)


def test_usage_counts_and_text(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    use = usage(_usage_ledger(tmp_path / "a", 23, 7), budget=20)
    assert (use.n_evaluations, use.n_models, use.n_protocols) == (23, 7, 1)
    assert use.by_kind == {"evaluated": 8, "judged": 8, "rejudged": 7}
    assert use.over_budget and use.budget == 20
    assert (use.first_time, use.last_time) == ("2026-11-03T09:30:15Z", "2026-11-25T09:30:15Z")
    assert use.text.startswith(
        "this test set has been evaluated 23 times by 7 distinct models since 2026-11-03; "
        "past the budget of 20: its numbers may now overstate performance on new data"
    )
    (tmp_path / "b").mkdir()
    at_budget = usage(_usage_ledger(tmp_path / "b", 2, 1), budget=2)
    assert not at_budget.over_budget
    assert at_budget.text == (
        "this test set has been evaluated twice by one model since 2026-11-03 "
        "(0 of the budget of 2 left)"
    )


def test_usage_of_a_fresh_registration(tmp_path: Path) -> None:
    use = usage(read_ledger(_ledger(tmp_path, 0), signing_key=None), budget=5)
    assert (use.n_evaluations, use.n_models, use.first_time, use.over_budget) == (0, 0, None, False)
    assert use.text == (
        "this test set has not been evaluated since its registration on 2026-11-02 "
        "(budget: 5 evaluations)"
    )


@pytest.mark.parametrize("budget", [0, -1, True, 2.5])
def test_usage_refuses_a_bad_budget(tmp_path: Path, budget: object) -> None:
    ledger = read_ledger(_ledger(tmp_path, 0), signing_key=None)
    with pytest.raises(InputError, match="budget must be an integer >= 1"):
        usage(ledger, budget=budget)  # type: ignore[arg-type]
