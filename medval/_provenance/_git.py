"""The git commit of a folder, read from the repository's files: git itself never runs.

Running ``git`` in a folder someone else prepared executes whatever that
repository's own config names (``core.fsmonitor``, clean filters, ...), so
medval reads ``.git`` directly: HEAD, loose refs and packed refs for the
commit, and the index for whether tracked files changed. Nothing is
written and no program is started.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

__all__ = ["git_commit"]

_MAX_SYMREF_DEPTH = 5
_GITLINK = 0o160000
_SYMLINK = 0o120000


def _find_git(folder: Path) -> tuple[Path, Path] | None:
    """(work tree, git dir) of the repository holding ``folder``, if any."""
    for base in (folder, *folder.parents):
        dot = base / ".git"
        if dot.is_dir():
            return base, dot
        if dot.is_file():
            text = dot.read_text(encoding="utf-8", errors="replace").strip()
            if text.startswith("gitdir:"):
                target = Path(text[len("gitdir:") :].strip())
                return base, (target if target.is_absolute() else base / target)
            return None
    return None


def _common_dir(git_dir: Path) -> Path:
    """Where refs live: a linked work tree's ``commondir``, else the git dir."""
    common = git_dir / "commondir"
    if common.is_file():
        target = Path(common.read_text(encoding="utf-8").strip())
        return target if target.is_absolute() else git_dir / target
    return git_dir


def _packed_ref(common: Path, ref: str) -> str | None:
    packed = common / "packed-refs"
    if not packed.is_file():
        return None
    for line in packed.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(("#", "^")):
            continue
        sha, _, name = line.partition(" ")
        if name.strip() == ref:
            return sha.strip()
    return None


def _head_sha(git_dir: Path) -> str | None:
    common = _common_dir(git_dir)
    text = (git_dir / "HEAD").read_text(encoding="utf-8", errors="replace").strip()
    for _ in range(_MAX_SYMREF_DEPTH):
        if not text.startswith("ref:"):
            break
        ref = text[len("ref:") :].strip()
        if ".." in ref.split("/"):
            return None
        loose = next((d / ref for d in (git_dir, common) if (d / ref).is_file()), None)
        if loose is None:
            return _packed_ref(common, ref)
        text = loose.read_text(encoding="utf-8", errors="replace").strip()
    sha = text.lower()
    if len(sha) in (40, 64) and all(c in "0123456789abcdef" for c in sha):
        return sha
    return None


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """Git's offset varint (index v4 path compression)."""
    c = data[pos]
    pos += 1
    value = c & 0x7F
    while c & 0x80:
        c = data[pos]
        pos += 1
        value = ((value + 1) << 7) | (c & 0x7F)
    return value, pos


def _index_entries(index: Path, hash_len: int) -> list[tuple[str, int, int, int, bytes]]:
    """(path, mode, mtime seconds, size, object id) of each stage-0 tracked entry."""
    data = index.read_bytes()
    if data[:4] != b"DIRC":
        raise ValueError("not a git index")
    version, count = struct.unpack(">II", data[4:12])
    if version not in (2, 3, 4):
        raise ValueError(f"index version {version}")
    pos, previous, out = 12, b"", []
    for _ in range(count):
        start = pos
        mtime_s = struct.unpack(">I", data[pos + 8 : pos + 12])[0]
        mode = struct.unpack(">I", data[pos + 24 : pos + 28])[0]
        size = struct.unpack(">I", data[pos + 36 : pos + 40])[0]
        oid = data[pos + 40 : pos + 40 + hash_len]
        pos += 40 + hash_len
        flags = struct.unpack(">H", data[pos : pos + 2])[0]
        pos += 2
        extended = 0
        if flags & 0x4000 and version >= 3:
            extended = struct.unpack(">H", data[pos : pos + 2])[0]
            pos += 2
        if version == 4:
            strip, pos = _varint(data, pos)
            end = data.index(b"\x00", pos)
            name = previous[: len(previous) - strip] + data[pos:end]
            pos = end + 1
        else:
            end = data.index(b"\x00", pos)
            name = data[pos:end]
            pos = start + ((end - start) // 8 + 1) * 8  # NUL-padded to a multiple of 8
        previous = name
        stage = (flags >> 12) & 0x3
        skip_worktree = bool(extended & 0x4000)
        if stage == 0 and not skip_worktree:
            out.append((name.decode("utf-8", "surrogateescape"), mode, mtime_s, size, oid))
    return out


def _object_format(git_dir: Path) -> str:
    config = _common_dir(git_dir) / "config"
    if config.is_file():
        for line in config.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.strip().partition("=")
            if key.strip().lower() == "objectformat" and value.strip().lower() == "sha256":
                return "sha256"
    return "sha1"


def _changed(tree: Path, git_dir: Path) -> bool:
    """Whether a tracked file differs from the index (git status, untracked ignored).

    A file whose size and modification second match its index entry, and
    that is older than the index, counts as unchanged, as git assumes;
    others are hashed as git blobs. Clean
    filters and line-ending conversion are not applied (they are code or
    config), so a repository using them may show as changed.
    """
    index = git_dir / "index"
    if not index.is_file():
        return False
    algo = _object_format(git_dir)
    racy_from = int(index.stat().st_mtime)
    for rel, mode, mtime_s, size, oid in _index_entries(index, 32 if algo == "sha256" else 20):
        if mode & 0o170000 == _GITLINK:
            continue
        path = tree / rel
        try:
            st = os.lstat(path)
        except OSError:
            return True
        # Unchanged size and second count as clean, unless the file is as new as
        # the index itself ("racily clean": changed within the second it was staged).
        if st.st_size == size and int(st.st_mtime) == mtime_s < racy_from:
            continue
        if mode & 0o170000 == _SYMLINK:
            content = os.readlink(path).encode("utf-8", "surrogateescape")
        else:
            content = path.read_bytes()
        blob = hashlib.new(algo, b"blob %d\x00" % len(content) + content).digest()
        if blob != oid:
            return True
    return False


def git_commit(folder: Path) -> str | None:
    """The commit checked out where ``folder`` lives (a clean tree), or None.

    A tree whose tracked files differ from the index gets ``"<sha>-dirty"``:
    the commit alone would not reproduce it. No repository, or one medval
    cannot read: None. Read from the files under ``.git``; git never runs.
    """
    found = _find_git(Path(folder).resolve())
    if found is None:
        return None
    tree, git_dir = found
    try:
        sha = _head_sha(git_dir)
        if sha is None:
            return None
        return f"{sha}-dirty" if _changed(tree, git_dir) else sha
    except (OSError, ValueError, IndexError, struct.error):
        return None
