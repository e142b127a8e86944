"""The ``medval`` command line.

Exit codes (:class:`medval.ExitCode`): 0 passed, 1 gate failed, 2 usage or
spec error, 3 input data error, 4 internal error.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from medval._errors import ExitCode, InputError, MedvalError, SpecError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"medval: error: {message}", file=sys.stderr)
        raise SystemExit(ExitCode.USAGE_ERROR)


def _parser() -> argparse.ArgumentParser:
    from medval import __version__

    p = _Parser(prog="medval", description="Clinical validation of medical-imaging AI.")
    p.add_argument("--version", action="version", version=f"medval {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    d = sub.add_parser(
        "demo",
        help="run the demo validation (synthetic DICOM cohort, small CNN) and write a report",
    )
    d.add_argument("--out", required=True, help="output folder (created)")
    d.add_argument("--seed", type=int, default=0, help="seed for data, training and bootstrap")
    d.add_argument("--quiet", action="store_true", help="no progress output")

    v = sub.add_parser("validate", help="run a validation spec (medval.toml) on your data")
    v.add_argument("spec", help="path to medval.toml")
    v.add_argument("--out", help="output folder (default: the spec's output.dir)")
    v.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow a model file that is a full pickle (it can run code: only for trusted files)",
    )
    v.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def _run(args: argparse.Namespace, argv: Sequence[str]) -> ExitCode:
    from medval import run

    progress = not args.quiet and sys.stderr.isatty()
    if args.command == "demo":
        outcome = run.run_demo(
            args.out, seed=args.seed, progress=progress, quiet=args.quiet, argv=argv
        )
    else:
        outcome = run.run_spec(
            args.spec,
            out_dir=args.out,
            trust_pickle=args.trust_pickle,
            progress=progress,
            quiet=args.quiet,
            argv=argv,
        )
    print(run.summary_table(outcome.result))
    print(f"\nreport: {outcome.report}\nresult: {outcome.result_json}")
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medval`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help(sys.stderr)
        return int(ExitCode.USAGE_ERROR)
    try:
        return int(_run(args, ["medval", *argv]))
    except SpecError as exc:
        code, kind = ExitCode.USAGE_ERROR, "spec error"
        err: BaseException = exc
    except InputError as exc:
        code, kind, err = ExitCode.DATA_ERROR, "input data error", exc
    except MedvalError as exc:
        code, kind, err = ExitCode.INTERNAL_ERROR, "error", exc
    except KeyboardInterrupt:
        print("medval: interrupted", file=sys.stderr)
        return int(ExitCode.INTERNAL_ERROR)
    except Exception as exc:  # fail closed: never report success after a crash
        code, kind, err = ExitCode.INTERNAL_ERROR, "internal error (please report it)", exc
    if args.debug:
        traceback.print_exception(err)
    print(f"medval: {kind}: {err}", file=sys.stderr)
    return int(code)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
