"""The medval pytest plugin (entry point ``pytest11``).

``pytest --medval-spec medval.toml`` turns each acceptance criterion of the
spec into its own pytest item (listed by ``--collect-only``, selected with
``-k``, reported in ``--junitxml``); the validation runs once per session,
when the first item needs it. ``--medval-result result.json`` judges an
existing result instead of running the model.

Session fixtures for hand-written tests: ``medval_result``,
``medval_predictions``, ``medval_cohort``. The ``medval`` marker tags
validation tests (they are slow: deselect with ``-m "not medval"``); every
criterion item and every test using a medval fixture carries it.

pytest loads this module at start-up, so it imports only the standard
library and pytest; medval itself (numpy, torch) loads when a test needs it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from medval._result import ValidationResult
    from medval.gate import Criterion, Spec, Verdict

__all__ = ["CriterionFailedError", "MedvalCriterionItem", "MedvalGateWarning", "MedvalSpecFile"]

_FIXTURES = ("medval_result", "medval_predictions", "medval_cohort")


class MedvalGateWarning(UserWarning):
    """A criterion with severity "warn" was violated (the test still passes)."""


class CriterionFailedError(AssertionError):
    """A criterion failed or could not be judged."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


class _State:
    """The spec and the (lazily computed) validation of one pytest session."""

    def __init__(self, config: pytest.Config) -> None:
        spec = config.getoption("medval_spec") or config.getini("medval_spec")
        root = Path(str(config.rootpath))
        self.spec_path = None if not spec else _path(spec, root, config)
        result = config.getoption("medval_result")
        self.result_path = None if not result else Path(result).resolve()
        out = config.getoption("medval_out")
        self.out_dir = None if not out else Path(out).resolve()
        self.trust_code = bool(config.getoption("medval_trust_code"))
        self._spec: Spec | None = None
        self._outcome: Any = None
        self._result: ValidationResult | None = None
        self._failure: BaseException | None = None

    def spec(self) -> Spec:
        if self.spec_path is None:
            pytest.skip("no medval spec: pass --medval-spec medval.toml (or set medval_spec)")
        if self._spec is None:
            from medval.gate import read_spec

            self._spec = read_spec(self.spec_path)
        return self._spec

    def result(self) -> ValidationResult:
        if self._failure is not None:  # fail every item the same way, compute once
            raise self._failure
        if self._result is None:
            try:
                self._result = self._compute()
            except BaseException as exc:
                self._failure = exc
                raise
        return self._result

    def _compute(self) -> ValidationResult:
        from medval._result import ValidationResult

        spec = self.spec()
        if self.result_path is not None:
            return ValidationResult.read_json(self.result_path)
        from medval.run import run_spec

        self._outcome = run_spec(spec, out_dir=self.out_dir, quiet=True, trust_code=self.trust_code)
        return self._outcome.result  # type: ignore[no-any-return]

    def predictions(self) -> Any:
        result = self.result()
        if self._outcome is not None:
            return self._outcome.predictions
        from medval.gate import read_predictions_csv

        folder = self.result_path.parent if self.result_path is not None else Path()
        return read_predictions_csv(
            folder / "predictions.csv",
            class_names=[str(c) for c in result.values["task.class_names"]],
            positive_class=str(result.values["task.positive_class"]),
        )

    def cohort(self) -> Any:
        self.result()
        if self._outcome is not None:
            return self._outcome.cohort
        import os

        from medval.run import read_data

        spec = self.spec()
        salt = os.environ.get(spec["data.salt_env"])
        return read_data(spec, salt=salt, progress=False).cohort


def _path(value: str, root: Path, config: pytest.Config) -> Path:
    p = Path(value)
    if not p.is_absolute():
        cli = config.getoption("medval_spec")
        p = (Path.cwd() if cli else root) / p
    return p.resolve()


_STATE = pytest.StashKey[_State]()


def _state(config: pytest.Config) -> _State:
    if _STATE not in config.stash:
        config.stash[_STATE] = _State(config)
    return config.stash[_STATE]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("medval", "medval validation gate")
    group.addoption(
        "--medval-spec",
        metavar="PATH",
        help="medval.toml: one test item per acceptance criterion",
    )
    group.addoption(
        "--medval-result",
        metavar="PATH",
        help="judge this result.json instead of running the validation",
    )
    group.addoption(
        "--medval-out",
        metavar="DIR",
        help="output folder of the validation run (default: the spec's output.dir)",
    )
    group.addoption(
        "--medval-trust-code",
        action="store_true",
        help="let the spec run code (pickles, TorchScript, factories and transforms outside "
        "its folder), as medval validate --trust-code",
    )
    parser.addini("medval_spec", "default medval.toml for --medval-spec", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "medval: a validation test on the medval result (slow: runs the model once per "
        "session); deselect with -m 'not medval'",
    )


class MedvalSpecFile(pytest.File):
    """The spec file as a pytest collector of criterion items."""

    def collect(self) -> list[MedvalCriterionItem]:
        from medval.gate import spec_criteria

        spec = _state(self.config).spec()
        return [
            MedvalCriterionItem.from_parent(self, name=c.name, criterion=c)
            for c in spec_criteria(spec)
        ]


class MedvalCriterionItem(pytest.Item):
    """One acceptance criterion of the spec."""

    def __init__(self, *, criterion: Criterion, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.criterion = criterion
        self.add_marker("medval")

    def setup(self) -> None:
        _state(self.config).result()  # an analysis that crashes is a setup error

    def runtest(self) -> None:
        from medval.gate import judge_spec

        state = _state(self.config)  # the whole spec: gate.multiplicity adjusts across criteria
        verdicts = judge_spec(state.result(), state.spec())
        (verdict,) = [v for v in verdicts if v.name == self.criterion.name]
        self.user_properties.append(("medval_status", verdict.status))
        if verdict.status in ("fail", "error"):
            raise CriterionFailedError(verdict)
        if verdict.status == "warn":
            warnings.warn(MedvalGateWarning(f"{verdict.name}: {verdict.reason}"), stacklevel=1)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        if isinstance(excinfo.value, CriterionFailedError):
            v = excinfo.value.verdict
            head = "could not judge" if v.status == "error" else "criterion failed"
            lines = [f"medval {head}: {v.name} ({v.key})", f"  {v.reason}"]
            lines += [f"    {g['status']:5} {g['reason']}" for g in v.groups]
            return "\n".join(lines)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"medval criterion {self.name}"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # Before -k/-m deselection (tryfirst), so both apply to criterion items.
    for item in items:
        if any(f in getattr(item, "fixturenames", ()) for f in _FIXTURES):
            item.add_marker("medval")
    state = _state(config)
    if state.spec_path is None:
        return
    from medval._errors import SpecError

    try:
        state.spec()
    except SpecError as exc:
        raise pytest.UsageError(f"--medval-spec: {exc}") from exc
    # Through the collection protocol, so that reporters count and list the items.
    spec_file = MedvalSpecFile.from_parent(session, path=state.spec_path)
    items.extend(session.genitems(spec_file))


@pytest.fixture(scope="session")
def medval_result(request: pytest.FixtureRequest) -> ValidationResult:
    """The session's ValidationResult (computed once, or read with --medval-result)."""
    return _state(request.config).result()


@pytest.fixture(scope="session")
def medval_predictions(request: pytest.FixtureRequest) -> Any:
    """The evaluated cases' :class:`~medval.Predictions` (from predictions.csv with
    --medval-result: no MC samples)."""
    return _state(request.config).predictions()


@pytest.fixture(scope="session")
def medval_cohort(request: pytest.FixtureRequest) -> Any:
    """The Cohort (pandas DataFrame indexed by case_id) of the spec's data."""
    return _state(request.config).cohort()
