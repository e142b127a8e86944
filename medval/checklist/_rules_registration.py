"""Evidence for the registration items (CLAIM 2024 item 34, TRIPOD+AI item 18d).

Filled from the run's comparison with its pre-registration (``medval
register``, recorded in ``provenance["registration"]``): when the protocol was
fixed, its digest, the test splits it covers, and every deviation since. A
registration beside the data is not a public registry entry, so the item
stays partial until a person adds the registry and number (or says there is
none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medval.checklist._model import Evidence

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = ["registration"]


def registration(r: ValidationResult) -> Evidence | None:
    """The medval pre-registration, its deviations and the test set's usage."""
    reg = r.provenance.get("registration") or {}
    if reg.get("status") != "registered":
        return None
    splits = ", ".join(sorted(reg.get("splits_now") or {})) or "none"
    text = (
        f"Protocol and {reg.get('n_criteria', 'its')} acceptance criteria pre-registered with "
        f"medval on {str(reg.get('registered_at', ''))[:10]} before the test data were opened "
        f"(protocol SHA-256 {str(reg.get('protocol_sha256', ''))[:16]}…"
        + (", HMAC-signed" if reg.get("signed") else "")
        + f"; splits {splits} fixed by manifest digests)"
    )
    devs = reg.get("deviations") or []
    if devs:
        text += f"; {len(devs)} deviation(s) after registration: " + "; ".join(
            str(d.get("text")) for d in devs
        )
    else:
        text += "; this run follows it without deviation"
    usage = (r.provenance.get("test_set_usage") or {}).get("text")
    if usage:
        text += f"; {usage}"
    return Evidence(text + ".", complete=False)
