"""What a spec may run without the user's word on the command line.

A spec is data that arrives with a cohort or a colleague's archive; it must
not be able to run code the user did not ask for. Without ``--trust-code``
a spec may name only code in its own folder (``model_def.py:build`` beside
it) or medval's own (``medval.demo:make_model``); any other factory or
transform import path, a ``.py`` file outside the spec's folder, and the
spec granting trust itself (``trust_pickle = true``) are refused before
anything is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medval._errors import SpecError

__all__ = ["TRUST_FLAG", "check_trust", "code_outside_spec"]

#: The command-line flag that allows pickles, TorchScript and outside code.
TRUST_FLAG = "--trust-code"
_OWN_PACKAGE = "medval"


def _outside(value: str, spec_dir: Path) -> str | None:
    """Why running ``value`` ("file.py:fn" or "pkg.mod:fn") needs trust, or None."""
    target = value.rpartition(":")[0]
    if target.endswith(".py"):
        path = Path(target).expanduser()
        path = (path if path.is_absolute() else spec_dir / path).resolve()
        try:
            path.relative_to(spec_dir.resolve())
        except ValueError:
            return "a .py file outside the spec's folder"
        return None
    if target.split(".")[0] == _OWN_PACKAGE:
        return None
    return "an import path (code installed outside the spec's folder)"


def code_outside_spec(sections: Mapping[str, Mapping[str, Any]], spec_dir: Path) -> list[str]:
    """Spec keys naming code beyond the spec's folder and medval, each with why."""
    named: list[tuple[str, Any]] = [
        ("model.factory", (sections.get("model") or {}).get("factory")),
        ("baseline.factory", (sections.get("baseline") or {}).get("factory")),
    ]
    steps = (sections.get("preprocess") or {}).get("steps") or []
    named += [
        (f"preprocess.steps[{i}].callable", s.get("callable"))
        for i, s in enumerate(steps)
        if isinstance(s, Mapping) and s.get("op") == "transform"
    ]
    out = []
    for key, value in named:
        if isinstance(value, str) and (why := _outside(value, spec_dir)):
            out.append(f"{key} = {value!r} ({why})")
    return out


def check_trust(
    sections: Mapping[str, Mapping[str, Any]], spec_dir: Path, *, trusted: bool
) -> None:
    """Refuse, before anything loads, a spec naming outside code without ``--trust-code``.

    Raises
    ------
    SpecError
        Naming every such key and the flag.
    """
    if trusted:
        return
    outside = code_outside_spec(sections, spec_dir)
    if outside:
        raise SpecError(
            f"the spec names code outside its folder: {'; '.join(outside)}. medval runs such "
            f"code only when you ask on the command line: pass {TRUST_FLAG} (Python: "
            "trust_code=True) if you trust it, or copy the file beside the spec."
        )
