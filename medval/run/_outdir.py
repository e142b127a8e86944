"""A run's output folder, written whole or not at all.

A run writes into a staging folder beside its target (``.<name>.tmp-<pid>-*``,
same parent, so a rename moves it) and, once everything is written, lists
every file with its SHA-256 in ``manifest.json`` and swaps the staging folder
into place:

- On Linux one ``renameat2(RENAME_EXCHANGE)`` swaps the two folders
  atomically; the previous run, now under the staging name, is then removed.
- Elsewhere (or on a filesystem without it) the previous run is renamed to
  ``.<name>.old-<pid>``, the staging folder to the target, and the old one
  removed. Between those two renames (microseconds) the target is absent;
  SIGINT and SIGTERM are held back across them, and after a SIGKILL there the
  next run to that folder puts the previous run back from ``.old-<pid>``.

A run that fails or is interrupted removes its staging folder and leaves the
previous complete run as it was; a staging folder left by a SIGKILL is
removed by the next run to the same target. The target is replaced whole, so
it must be new, empty, or an earlier medval run holding only what medval
wrote (the files its ``manifest.json`` lists, or medval's output file names
for a run written before manifests): any other folder is refused before any
work.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

from medval._errors import DataError, SpecError
from medval.gate import Spec
from medval.run._manifest import MANIFEST, files_below, read_manifest, write_manifest

__all__ = [
    "OutputFolder",
    "check_inputs_outside",
    "output_error",
    "spec_inputs",
    "write_text_atomic",
]

#: What a run folder written before manifests (or by `medval report`) may hold.
_RUN_FILES = frozenset({MANIFEST, "result.json", "report.html", "report.pdf",
                        "predictions.csv", "run.log", "junit.xml"})  # fmt: skip
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_inputs_outside(inputs: Sequence[tuple[str, Path]], out: Path, *, out_key: str) -> None:
    """Refuse inputs that lie inside the output folder (symlinks resolved).

    The folder is replaced whole at the end of a run: an input there would be
    deleted, or replaced by this run's own output (a baseline's
    ``predictions.csv`` by the candidate's).

    Raises
    ------
    SpecError
        Naming the first such key.
    """
    target = out.resolve()
    for key, path in inputs:
        if _inside(path.resolve(), target):
            raise SpecError(
                f"{key} ({path.name}) lies inside the output folder {target.name} ({out_key}): "
                "medval replaces that folder whole at the end of every run, so an input "
                "there is deleted or, for a baseline's predictions.csv, replaced by the "
                "candidate's own. Keep inputs outside the output folder (copy a released "
                f"run's predictions.csv elsewhere), or choose another {out_key}."
            )


def spec_inputs(spec: Spec, *, baseline: str | Path | None = None) -> list[tuple[str, Path]]:
    """(key, path) of every file or folder a run reads: data, models, baseline, code, the spec."""
    from medval.run._model import model_files

    out: list[tuple[str, Path]] = [("the spec", spec.path)]
    for key in ("data.dicom_dir", "data.labels", "data.table", "data.masks", "data.cases",
                "model.predictions",
                "baseline.predictions", "baseline.model"):  # fmt: skip
        section, name = key.split(".")
        if spec.sections.get(section, {}).get(name) is not None:
            out.append((key, spec.resolve(key)))
    files = model_files(spec)
    out += [("model.file" if len(files) == 1 else f"model.file[{i}]", f)
            for i, f in enumerate(files)]  # fmt: skip
    if baseline is not None:
        out.append(("--baseline", Path(baseline)))
    code = [
        ("model.factory", spec.sections["model"].get("factory")),
        ("baseline.factory", (spec.sections.get("baseline") or {}).get("factory")),
    ]
    steps = spec.sections.get("preprocess", {}).get("steps") or []
    code += [(f"preprocess.steps[{i}].callable", s.get("callable"))
             for i, s in enumerate(steps) if isinstance(s, dict)]  # fmt: skip
    for key, value in code:
        target = str(value).rpartition(":")[0] if isinstance(value, str) else ""
        if target.endswith(".py"):
            out.append((key, spec.path.parent / Path(target).expanduser()))
    return out


def _foreign_files(folder: Path) -> list[str] | None:
    """Files in ``folder`` that no medval run wrote; None when it holds no run at all.

    A run's files are those its manifest lists, or (a run written before
    manifests) medval's output file names.
    """
    if not ((folder / MANIFEST).is_file() or (folder / "result.json").is_file()):
        return None
    try:
        listed = set(read_manifest(folder))
    except DataError:
        listed = set()
    return [rel for rel in files_below(folder) if rel not in listed and rel not in _RUN_FILES]


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # Windows: os.kill would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or cannot tell: leave it
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # this filesystem or kernel cannot: the two-rename path
    raise OSError(err, os.strerror(err), str(a))


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM arriving inside the block are delivered after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    names = [s for s in ("SIGINT", "SIGTERM") if hasattr(signal, s)]
    previous = {
        sig: signal.signal(sig, lambda n, _f: caught.append(n))
        for sig in (getattr(signal, s) for s in names)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in caught[:1]:
            signal.raise_signal(sig)


def _fsync(path: Path, *, directory: bool = False) -> None:
    if directory and not hasattr(os, "O_DIRECTORY"):
        return  # Windows: directories cannot be opened
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to a temporary file beside ``path``, then rename it over.

    A reader sees the old file or the new one, never a part.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.parent / f".{p.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    # os.open, not mkstemp: the file gets the umask's mode (0644), like any other.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p


class OutputFolder:
    """The staging folder of a run's outputs, swapped into place by :meth:`commit`.

    Parameters
    ----------
    target : path
        The output folder. Symlinks are resolved: the real folder is replaced.
    key : str
        How the user named it (``"--out"``, ``"output.dir"``), for messages.
    fresh : bool, default False
        Refuse a target that exists and is not empty (``medval demo``);
        otherwise an earlier medval run there is replaced, provided it holds
        nothing medval did not write.

    Raises
    ------
    SpecError
        From the constructor, before any work: the target is a file, a
        non-empty folder that holds no medval run or files no run wrote (or
        any non-empty folder with ``fresh``), or its parent cannot be created
        or written.

    Use as a context manager: the staging folder (:attr:`path`) is created
    on entry and removed on exit unless :meth:`commit` moved it into place.
    """

    def __init__(self, target: str | Path, *, key: str, fresh: bool = False) -> None:
        self.key = key
        #: The folder as the user named it (for messages and the paths a run returns).
        self.given = Path(target).expanduser()
        self.target = self.given.resolve()
        self.path: Path = self.target  # the staging folder once entered
        self.committed = False
        t = self.target
        if t.exists() and not t.is_dir():
            raise SpecError(f"{key} {self.given}: is a file, not a folder; give a folder path.")
        if t.is_dir() and any(t.iterdir()):
            if fresh:
                raise SpecError(
                    f"{key} {self.given} already exists and is not empty; give a new or empty "
                    "folder (nothing is overwritten)."
                )
            foreign = _foreign_files(t)
            if foreign is None:
                raise SpecError(
                    f"{key} {self.given} is a folder that holds no medval run (no {MANIFEST} or "
                    "result.json): medval replaces its output folder whole, so it would "
                    "delete what is there. Give a new or empty folder, or an earlier run's."
                )
            if foreign:
                shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
                raise SpecError(
                    f"{key} {self.given} holds an earlier run and {len(foreign)} file(s) no "
                    f"medval run wrote ({shown}): medval replaces its output folder whole, "
                    "so it would delete them. Move them out, or give another folder."
                )
        try:
            t.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpecError(
                f"{key} {self.given}: cannot create its parent folder ({exc.strerror or exc})."
            ) from exc
        if not os.access(t.parent, os.W_OK | os.X_OK):
            raise SpecError(
                f"{key} {self.given}: its parent folder is not writable; choose another."
            )

    # -- staging -----------------------------------------------------------------------

    def __enter__(self) -> OutputFolder:
        self._clean_stale()
        try:
            while True:  # mkdir, not mkdtemp: the folder gets the umask's mode, like any other
                staging = self.target.parent / (
                    f".{self.target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
                )
                with contextlib.suppress(FileExistsError):
                    staging.mkdir()
                    break
            self.path = staging
        except OSError as exc:
            raise SpecError(
                f"{self.key} {self.given}: cannot write beside it ({exc.strerror or exc})."
            ) from exc
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.committed and self.path != self.target:
            shutil.rmtree(self.path, ignore_errors=True)

    def final(self, path: Path) -> Path:
        """Where a path inside the staging folder will be once committed (as the user named it)."""
        return self.given / path.relative_to(self.path)

    def staged(self, path: str | Path) -> Path | None:
        """The staging path of ``path`` when it lies inside the target, else None."""
        p = Path(path).expanduser().resolve()
        if not _inside(p, self.target) or p == self.target:
            return None
        return self.path / p.relative_to(self.target)

    def _clean_stale(self) -> None:
        """Remove staging folders of dead runs; put back a previous run a SIGKILL left aside."""
        parent, name = self.target.parent, self.target.name
        for kind in ("old", "tmp"):
            prefix = f".{name}.{kind}-"
            for p in sorted(q for q in parent.iterdir() if q.name.startswith(prefix)):
                pid = p.name[len(prefix) :].split("-")[0]
                if not pid.isdigit() or _pid_alive(int(pid)) or not p.is_dir():
                    continue
                if kind == "old" and not self.target.exists():
                    os.rename(p, self.target)  # killed between the two renames
                else:
                    shutil.rmtree(p, ignore_errors=True)

    # -- commit ------------------------------------------------------------------------

    def write_manifest(self) -> Path:
        """List every staged file with its SHA-256 (each file flushed to disk first)."""
        manifest = write_manifest(self.path, before_hashing=_fsync)
        _fsync(self.path, directory=True)
        return manifest

    def commit(self) -> None:
        """Write the manifest and put the staging folder in the target's place."""
        self.write_manifest()
        t, staged = self.target, self.path
        if not t.exists():
            os.rename(staged, t)
            self.committed = True
        elif _exchange(staged, t):
            self.committed = True  # the staging name now holds the previous run
            shutil.rmtree(staged, ignore_errors=True)
        else:
            old = t.parent / f".{t.name}.old-{os.getpid()}"
            with _signals_held():
                os.rename(t, old)
                try:
                    os.rename(staged, t)
                except BaseException:
                    os.rename(old, t)
                    raise
                self.committed = True
            shutil.rmtree(old, ignore_errors=True)
        _fsync(t.parent, directory=True)


def output_error(exc: OSError, folder: OutputFolder) -> DataError:
    """A write that failed (full disk, permissions) as a data error saying what was kept."""
    why = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        why += ": the disk is full"
    kept = (
        f"{folder.target.name} still holds the previous complete run"
        if folder.target.exists()
        else f"nothing was written to {folder.target.name}"
    )
    return DataError(f"could not write the run's outputs ({why}); {kept}.")
