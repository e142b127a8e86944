"""The ``medval`` command line.

Exit codes (:class:`medval.ExitCode`): 0 passed, 1 gate failed, 2 usage or
spec error, 3 input data error, 4 internal error.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medval._errors import ExitCode, InputError, MedvalError, MissingDependencyError, SpecError

if TYPE_CHECKING:
    from medval._result import ValidationResult
    from medval.gate import Verdict

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"medval: error: {message}", file=sys.stderr)
        raise SystemExit(ExitCode.USAGE_ERROR)


def _add_reproduce(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--reproduce",
        metavar="RESULT",
        help="an earlier run's result.json: state in the report whether this run reproduces it",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="for --reproduce: |a - b| <= T * max(1, |a|, |b|) (default: medval diff's)",
    )


def _add_engine(p: argparse.ArgumentParser) -> None:
    e = p.add_argument_group("engine (classifier specs; see docs/ray.md)")
    e.add_argument(
        "--engine",
        choices=("local", "ray"),
        default=None,
        help="run the model shard by shard from a Parquet manifest, each shard committed as "
        "it finishes, so a killed run resumes: 'local' in this process, 'ray' on Ray Data "
        "(pip install 'medval[ray]'). Default: in-process, no shards",
    )
    e.add_argument(
        "--address", help="--engine ray: an existing cluster ('auto', 'ray://host:port')"
    )
    e.add_argument("--workers", type=int, default=1, help="--engine ray: model actors (default 1)")
    e.add_argument(
        "--gpus-per-worker",
        type=float,
        default=None,
        help="--engine ray: GPUs per model actor (default: 1 where the cluster has GPUs, else 0)",
    )
    e.add_argument(
        "--ray-cpus", type=int, default=None, help="--engine ray: CPUs of a local Ray instance"
    )
    e.add_argument("--shard-size", type=int, default=None, help="cases per shard (default 256)")
    e.add_argument(
        "--work-dir",
        help="where the manifest and the committed shards live (default: OUT.work beside the "
        "output folder; removed after a complete run unless --keep-parts)",
    )
    e.add_argument("--keep-parts", action="store_true", help="keep the work folder after the run")


def _engine(args: argparse.Namespace) -> Any:
    """The ``--engine`` options as a :class:`medval.run.EngineRun` (None without --engine)."""
    if args.engine is None:
        given = [f for f in ("address", "ray_cpus", "shard_size", "work_dir") if getattr(args, f)]
        if given or args.keep_parts or args.workers != 1 or args.gpus_per_worker is not None:
            raise SpecError("--address, --workers, --shard-size, --work-dir ... need --engine.")
        return None
    from medval.engine import RayOptions, require_ray
    from medval.run import EngineRun

    ray = None
    if args.engine == "ray":
        require_ray()  # a missing Ray stops here, before the scan
        ray = RayOptions(
            args.address, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
            num_cpus=args.ray_cpus,
        )  # fmt: skip
    if args.shard_size is not None and args.shard_size < 1:
        raise SpecError(f"--shard-size must be a positive int; got {args.shard_size}.")
    return EngineRun(args.engine, args.work_dir, args.shard_size, args.keep_parts, ray)


def _checklist_name(value: str) -> str:
    """argparse type of ``--checklist``: a shipped checklist, or a did-you-mean error."""
    from medval.checklist import load_checklist

    try:
        return load_checklist(value).id
    except SpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _add_checklist(p: argparse.ArgumentParser, what: str) -> None:
    from medval.checklist import available_checklists

    names = available_checklists()
    p.add_argument(
        "--checklist",
        type=_checklist_name,
        default="claim-2024",
        metavar="{" + ",".join(names) + "}",
        help=f"{what} (default: %(default)s)",
    )


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
    d.add_argument("--seed", type=int, default=0, help="seed for the data and every statistic")
    d.add_argument(
        "--train",
        action="store_true",
        help="retrain the demo CNN here instead of using the shipped weights "
        "(the trained model depends on this machine's CPU kernels and threads)",
    )
    d.add_argument(
        "--task",
        choices=("classification", "segmentation", "regression"),
        default="classification",
        help="classification (default: a CNN on single images), segmentation "
        "(a U-Net on CT volumes with lesions) or regression (bone age from radiographs)",
    )
    _add_reproduce(d)
    _add_checklist(d, "the reporting checklist the report fills")
    d.add_argument("--quiet", action="store_true", help="no progress output")
    _add_engine(d)

    v = sub.add_parser("validate", help="run a validation spec (medval.toml) on your data")
    v.add_argument("spec", help="path to medval.toml")
    v.add_argument("--out", help="output folder (default: the spec's output.dir)")
    v.add_argument(
        "--trust-code",
        "--trust-pickle",
        dest="trust_code",
        action="store_true",
        help="let the spec run code: a model file that is a full pickle or TorchScript, "
        "factories and transforms outside the spec's folder (a spec cannot grant this "
        "itself; only for files you trust)",
    )
    v.add_argument(
        "--junit-xml", metavar="PATH", help="write JUnit XML, one testcase per criterion"
    )
    v.add_argument(
        "--baseline",
        metavar="CSV",
        help="baseline predictions (case_id, probability) for the [baseline] non-inferiority test",
    )
    _add_reproduce(v)
    _add_checklist(v, "the reporting checklist the report fills")
    v.add_argument("--quiet", action="store_true", help="no progress output")
    _add_engine(v)

    g = sub.add_parser("gate", help="re-judge an existing result.json against a spec's criteria")
    g.add_argument("result", help="path to result.json")
    g.add_argument("spec", help="path to medval.toml")
    g.add_argument(
        "--junit-xml", metavar="PATH", help="write JUnit XML, one testcase per criterion"
    )
    g.add_argument(
        "--rejudge",
        action="store_true",
        help="judge a result of another spec or model against this spec's criteria "
        "(refused otherwise; said in the output and the JUnit XML)",
    )

    _add_diff_parser(sub)
    _add_export_parser(sub)
    _add_plan_parser(sub)
    _add_ledger_parser(sub)
    _add_register_parser(sub)

    sub.add_parser("schema", help="print the JSON Schema of medval.toml (for editors)")

    r = sub.add_parser("report", help="render report.html again from a result.json (no recompute)")
    r.add_argument("result", help="path to result.json")
    r.add_argument("--out", metavar="DIR", required=True, help="folder for report.html")
    _add_checklist(r, "the reporting checklist the report fills")
    r.add_argument(
        "--answers",
        metavar="YAML",
        help="answers to the checklist's items (medval checklist init --checklist NAME)",
    )
    r.add_argument("--pdf", action="store_true", help="also write report.pdf (needs WeasyPrint)")

    c = sub.add_parser("checklist", help="reporting checklists (CLAIM 2024, TRIPOD+AI)")
    csub = c.add_subparsers(dest="checklist_command", metavar="COMMAND", required=True)
    ci = csub.add_parser("init", help="write a commented answers template for the human items")
    _add_checklist(ci, "the checklist to answer")
    ci.add_argument("--out", metavar="YAML", help="write here instead of printing")
    return p


def _add_diff_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    from medval.diff import DEFAULT_TOLERANCE

    f = sub.add_parser(
        "diff",
        help="compare two result.json files: exit 0 if they agree within tolerance, 1 if not",
    )
    f.add_argument("a", metavar="A", help="result.json of run A (or its folder)")
    f.add_argument("b", metavar="B", help="result.json of run B (or its folder)")
    f.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        metavar="T",
        help="numbers agree when |a-b| <= T*max(1,|a|,|b|) (default %(default)g); "
        "gate verdicts and model/data hashes must be identical",
    )
    f.add_argument(
        "--keys",
        action="append",
        metavar="PATTERN",
        help="compare only keys matching this glob, e.g. 'discrimination.*' (repeatable)",
    )
    f.add_argument("--json", action="store_true", help="print the comparison as JSON")


def _add_export_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    e = sub.add_parser(
        "export",
        help="write a validation run as a deployment bundle (deployment.json + safetensors)",
    )
    e.add_argument("result", help="the run's result.json (or its folder)")
    e.add_argument("spec", help="the medval.toml the run read (unchanged since)")
    e.add_argument("--out", metavar="DIR", required=True, help="bundle folder")
    e.add_argument(
        "--allow-failed-gate",
        action="store_true",
        help="export even though the run's release gate failed",
    )
    e.add_argument("--overwrite", action="store_true", help="replace a bundle in --out")


def _add_plan_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "plan", help="intended sample size: cases and patients for a target half-width or power"
    )
    for flag, what in (
        ("--auroc", "assumed AUROC (the baseline's with --margin)"),
        ("--sensitivity", "assumed sensitivity"),
        ("--specificity", "assumed specificity"),
        ("--prevalence", "share of positive patients"),
        ("--half-width", "target interval half-width (default 0.05)"),
        ("--margin", "paired AUROC non-inferiority margin against a baseline"),
        ("--power", "power of the non-inferiority verdict (default 0.8)"),
        ("--difference", "assumed true candidate minus baseline AUROC (default 0)"),
        ("--auroc-correlation", "correlation of the two AUROC estimates (default 0.5)"),
        ("--icc", "intra-patient correlation of the images (default 0)"),
        ("--confidence-level", "two-sided confidence level (default 0.95)"),
    ):
        p.add_argument(flag, type=float, metavar="X", help=what)
    p.add_argument("--images-per-patient", type=int, metavar="M", help="images per patient")
    p.add_argument(
        "--subgroup",
        action="append",
        metavar="NAME=SHARE[,auroc=A,...]",
        help="a subgroup floor: its share of patients, optionally its own values (repeatable)",
    )
    p.add_argument("--pilot", metavar="RESULT", help="take assumed values from a pilot result.json")
    p.add_argument("--pilot-subgroup", metavar="COLUMN", help="the pilot's subgroups of COLUMN")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def _plan(args: argparse.Namespace) -> ExitCode:
    import json

    from medval.run import plan_from_options, plan_table

    plan = plan_from_options(vars(args))
    print(json.dumps(plan, indent=2, sort_keys=True) if args.json else plan_table(plan))
    return ExitCode.OK


def _add_ledger_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    from medval.integrity import DEFAULT_USAGE_BUDGET, LEDGER_FILE

    lg = sub.add_parser("ledger", help="the test-set usage ledger: show its entries, verify it")
    lsub = lg.add_subparsers(dest="ledger_command", metavar="COMMAND", required=True)
    s = lsub.add_parser("show", help="list every use of the test set and the usage count")
    s.add_argument("path", metavar="PATH", help=f"{LEDGER_FILE} or the folder holding it")
    s.add_argument("--json", action="store_true", help="print the entries and usage as JSON")
    s.add_argument(
        "--budget",
        type=int,
        default=DEFAULT_USAGE_BUDGET,
        help="uses of the test set before it warns (default %(default)s)",
    )
    v = lsub.add_parser(
        "verify", help="check the hash chain: exit 0 if intact, 1 if it was tampered with"
    )
    v.add_argument("path", metavar="PATH", help=f"{LEDGER_FILE} or the folder holding it")
    v.add_argument(
        "--result",
        action="append",
        metavar="RESULT",
        help="a run's result.json: the ledger must still hold the head it recorded, which "
        "detects removed newest entries (repeatable)",
    )


def _ledger(args: argparse.Namespace) -> ExitCode:
    import dataclasses
    import json

    from medval import integrity
    from medval._result import ValidationResult, signing_key
    from medval._text import printable_text

    key = signing_key()
    if args.ledger_command == "show":
        ledger = integrity.read_ledger(args.path, signing_key=key)
        use = integrity.usage(ledger, budget=args.budget)
        if args.json:
            data = {"entries": [e.to_dict() for e in ledger.entries], "usage": use}
            print(json.dumps(data, default=dataclasses.asdict, indent=2, sort_keys=True))
        else:
            print(printable_text(integrity.ledger_table(ledger)))
            print(f"usage: {use.text}")
        return ExitCode.OK
    heads: list[tuple[int, str] | None] = [None]
    if args.result:
        heads = []
        for r in args.result:
            prov = ValidationResult.read_json(r, signing_key=key).provenance
            heads.append(integrity.anchor_from_provenance(prov, source=r))
    problems: dict[str, None] = {}
    for head in heads:
        check = integrity.verify_ledger(args.path, signing_key=key, expected_head=head)
        problems.update(dict.fromkeys(check.problems))
    where = integrity.ledger_path(args.path)
    if not problems:
        signed = "HMAC checked" if key else "no signing key set: HMAC not checked"
        n = len(args.result or ())
        anchors = f", {n} result anchor{'s' if n > 1 else ''} found" if n else ""
        print(
            f"ledger {where}: intact ({check.n_entries} entries, head seq {check.head_seq}; "
            f"{signed}{anchors})"
        )
        return ExitCode.OK
    n = len(problems)
    print(f"ledger {where}: NOT intact ({n} problem{'s' if n > 1 else ''})")
    for problem in problems:
        print(f"  - {printable_text(problem)}")
    return ExitCode.GATE_FAILED


def _add_register_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    g = sub.add_parser(
        "register",
        help="pre-register a spec: record its protocol and test-set manifests before use",
    )
    g.add_argument("spec", help="the medval.toml to register (no model is run)")
    g.add_argument(
        "--strict", action="store_true", help="runs that deviate from the registration fail"
    )
    g.add_argument(
        "--usage-budget",
        type=int,
        metavar="N",
        help="evaluations of the test set before the report warns "
        "(default: gate.usage_budget, else 20)",
    )
    g.add_argument(
        "--supersede",
        action="store_true",
        help="replace an existing registration (the new one records the old one)",
    )


def _register(args: argparse.Namespace) -> ExitCode:
    from medval import gate, run
    from medval._result import SIGNING_KEY_ENV, signing_key

    if args.usage_budget is not None and args.usage_budget < 1:
        raise SpecError(f"--usage-budget must be an integer >= 1; got {args.usage_budget}.")
    spec = gate.read_spec(args.spec)
    key = signing_key()
    reg, path = run.register_spec(
        spec,
        strict=args.strict,
        usage_budget=args.usage_budget,
        supersede=args.supersede,
        signing_key=key,
    )
    print(f"registered {spec.path.name} at {reg.registered_at}")
    print(f"protocol sha256: {reg.protocol_sha256}")
    print(f"criteria: {len(reg.protocol['criteria'])}")
    for name, split in reg.splits.items():
        print(f"split {name!r}: {split['n_cases']} cases, manifest {split['manifest_sha256'][:16]}")
    mode = "strict (deviations fail the gate)" if reg.strict else "deviations are reported"
    signed = f"signed with {SIGNING_KEY_ENV}" if key else f"unsigned ({SIGNING_KEY_ENV} unset)"
    print(f"{mode}; usage budget {reg.usage_budget}; {signed}")
    if reg.supersedes:
        print(f"supersedes the registration of {reg.supersedes[-1]['registered_at']}")
    print(
        f"written: {path.name} beside the cohort definition. Commit it (or make it read-only) "
        "before opening the test data."
    )
    return ExitCode.OK


def _export(args: argparse.Namespace) -> ExitCode:
    from medval.deploy import export_deployment

    path = export_deployment(
        args.result,
        args.spec,
        args.out,
        allow_failed_gate=args.allow_failed_gate,
        overwrite=args.overwrite,
    )
    print(f"deployment bundle: {path.parent} (load it with medval.load_deployment)")
    return ExitCode.OK


def _diff(args: argparse.Namespace) -> ExitCode:
    import json

    from medval.diff import diff_results

    try:
        diff = diff_results(args.a, args.b, tolerance=args.tolerance, keys=args.keys)
    except InputError as exc:  # an unreadable file is a usage error here, not a data error
        print(f"medval: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE_ERROR
    from medval._text import printable_text

    # Keys name groups from the data: the table shows them without terminal control.
    text = (
        json.dumps(diff.to_dict(), indent=2, sort_keys=True)
        if args.json
        else printable_text(diff.table())
    )
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `medval diff A B | head`: the verdict is the exit code
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return ExitCode.OK if diff.agree else ExitCode.GATE_FAILED


_MARK = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "error": "ERROR"}


def verdict_table(verdicts: Sequence[Verdict]) -> str:
    """The verdicts as a plain-text table for the terminal."""
    if not verdicts:
        return "no acceptance criteria in the spec: not gated"
    from medval._text import one_line

    rows = [("criterion", "status", "severity", "reason")]
    # One printable line per verdict: a terminal escape in a group name from a
    # DICOM header must not erase a line (or the gate status below it).
    rows += [
        (one_line(v.name), _MARK[v.status], one_line(v.severity), one_line(v.reason))
        for v in verdicts
    ]
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:<{w[2]}}  {r[3]}" for r in rows]
    lines.insert(1, "  ".join("-" * n for n in w) + "  ------")
    return "\n".join(lines)


def _multiplicity_line(result: ValidationResult) -> str:
    """The line under the verdict table: what the verdicts mean as a family (or nothing)."""
    summary = (result.values.get("gate.multiplicity") or {}).get("summary")
    return f"\nmultiplicity: {summary}" if summary else ""


def _finish_gate(
    verdicts: Sequence[Verdict], junit: str | None, *, rejudged: bool = False
) -> ExitCode:
    if junit:
        print(f"junit: {junit}")
    from medval import gate

    code = gate.exit_code(verdicts)
    how = "re-judged under another spec or model; " if rejudged else ""
    print(f"gate: {gate.gate_status(verdicts)} ({how}exit {int(code)})")
    return code


def _gate(args: argparse.Namespace) -> ExitCode:
    from medval import gate, run
    from medval._provenance import file_sha256
    from medval._result import signing_key

    spec = gate.read_spec(args.spec)
    checked = run.read_checked(
        args.result, spec, rejudge=args.rejudge, signing_key=signing_key()
    )  # fmt: skip
    result = checked.result
    guard = run.gate_integrity(spec, result, log=run.Log(quiet=True))
    verdicts = gate.judge_spec(result, spec)
    verdicts = guard.finish(result, verdicts, kind="rejudged" if checked.rejudged else "judged")
    gate.record(result, verdicts)
    banner = _rejudged_banner(checked) if checked.rejudged else None
    if banner:
        print(banner)
    print(verdict_table(verdicts) + _multiplicity_line(result) + _integrity_lines(result))
    print(f"gate: {checked.note()}")
    if args.junit_xml:
        properties = {
            **gate.suite_properties(result),
            "medval.verified": checked.note(),
            "medval.rejudged": "true" if checked.rejudged else "false",
            "medval.judged_with_spec_sha256": file_sha256(spec.path),
        }
        text = gate.junit_xml(
            verdicts, properties=properties, note=banner,
            suite_name="medval-rejudged" if checked.rejudged else "medval",
        )  # fmt: skip
        run.write_text_atomic(args.junit_xml, text)
    return _finish_gate(verdicts, args.junit_xml, rejudged=checked.rejudged)


def _rejudged_banner(checked: Any) -> str:
    """The line every output of ``medval gate --rejudge`` starts with."""
    why = "; ".join(checked.differences) or "same spec and model, judged again on purpose"
    return (
        "RE-JUDGED: these verdicts apply this spec's criteria to a result that was not "
        f"produced under them ({why}); they are not the run's own gate."
    )


def _integrity_lines(result: Any) -> str:
    """Registration, deviations, usage and the reusable holdout, under the verdict table."""
    from medval._text import one_line

    prov = result.provenance
    lines = []
    reg = prov.get("registration") or {}
    if reg.get("status") == "not registered":
        lines.append(f"registration: none ({reg.get('file')}); medval register SPEC fixes the "
                     "protocol before the test set is opened")  # fmt: skip
    for d in reg.get("deviations") or ():
        lines.append("DEVIATION: " + one_line(d["text"]))
    for key in ("test_set_usage", "holdout"):
        text = (prov.get(key) or {}).get("text")
        if text:
            lines.append(f"{key.replace('_', ' ')}: {one_line(text)}")
    return "".join("\n" + line for line in lines)


def _report(args: argparse.Namespace) -> ExitCode:
    from pathlib import Path

    from medval._result import ValidationResult
    from medval.report import write_outputs

    result = ValidationResult.read_json(args.result)
    outputs = write_outputs(result, Path(args.out), answers=args.answers, checklist=args.checklist)
    print(f"report: {outputs.report}\nresult: {outputs.result_json}")
    if args.pdf:
        from medval.report import write_pdf

        print(f"pdf: {write_pdf(outputs.report)}")
    return ExitCode.OK


def _checklist(args: argparse.Namespace) -> ExitCode:
    from pathlib import Path

    from medval.checklist import init_template

    text = init_template(args.checklist)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"answers template: {args.out}")
    else:
        print(text, end="")
    return ExitCode.OK


def _run(args: argparse.Namespace, argv: Sequence[str]) -> ExitCode:
    if args.command == "report":
        return _report(args)
    if args.command == "checklist":
        return _checklist(args)
    if args.command == "schema":
        from medval.gate import json_schema_text

        print(json_schema_text(), end="")
        return ExitCode.OK
    if args.command == "gate":
        return _gate(args)
    if args.command == "diff":
        return _diff(args)
    if args.command == "export":
        return _export(args)
    if args.command == "plan":
        return _plan(args)
    if args.command == "ledger":
        return _ledger(args)
    if args.command == "register":
        return _register(args)
    from medval import run

    progress = not args.quiet and sys.stderr.isatty()
    if args.command == "demo":
        outcome = run.run_demo(
            args.out,
            seed=args.seed,
            train=args.train,
            progress=progress,
            quiet=args.quiet,
            argv=argv,
            reproduce=args.reproduce,
            tolerance=args.tolerance,
            checklist=args.checklist,
            task=args.task,
            engine=_engine(args),
        )
    else:
        from medval import gate

        spec = gate.read_spec(args.spec)
        try:
            outcome = run.run_spec(
                spec,
                out_dir=args.out,
                trust_code=args.trust_code,
                progress=progress,
                quiet=args.quiet,
                argv=argv,
                baseline=args.baseline,
                reproduce=args.reproduce,
                tolerance=args.tolerance,
                checklist=args.checklist,
                junit_xml=args.junit_xml,
                engine=_engine(args),
            )
        except Exception as exc:
            if args.junit_xml:  # CI still sees every criterion, each as an error
                reason = f"validation did not complete: {type(exc).__name__}: {exc}"
                gate.write_junit(
                    gate.error_verdicts(gate.spec_criteria(spec), reason),
                    args.junit_xml,
                    properties={"medval.gate_status": "error"},
                )
            raise
    if outcome.result.provenance.get("holdout"):
        # The reusable holdout: the terminal (a CI log the team reads) shows only the
        # mechanism's answers; the test set's numbers stay in the output folder.
        print(
            "test-split numbers withheld (gate.holdout = 'thresholdout'): the verdicts below "
            "show Thresholdout's answers; keep the output folder from the team that tunes "
            "the model (docs/holdout.md)"
        )
    else:
        print(run.summary_table(outcome.result))
    print()
    print(
        verdict_table(outcome.verdicts)
        + _multiplicity_line(outcome.result)
        + _integrity_lines(outcome.result)
    )
    print(f"\nreport: {outcome.report}\nresult: {outcome.result_json}")
    rep = outcome.result.provenance.get("reproduces")
    if rep:
        word = "reproduces" if rep["agree"] else "does NOT reproduce"
        print(
            f"{word} run {rep['result_sha256'][:16]} within {rep['tolerance']:g} "
            f"({rep['n_differences']} differences; details: medval diff)"
        )
    if args.command == "demo":
        # The demo shows a gate; only an error (a bug) changes its exit code.
        errors = any(v.status == "error" for v in outcome.verdicts)
        return ExitCode.INTERNAL_ERROR if errors else ExitCode.OK
    return _finish_gate(outcome.verdicts, args.junit_xml)  # run_spec wrote the JUnit file


def _check_junit_path(path: str | None) -> None:
    """``--junit-xml`` must name a file that can be written: checked before any work."""
    if path is None:
        return
    from pathlib import Path

    p = Path(path).expanduser()
    if p.is_dir():
        raise SpecError(f"--junit-xml {path}: is a folder; give a file path (e.g. junit.xml).")
    parent = p.parent if str(p.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise SpecError(f"--junit-xml {path}: {parent} is a file, not a folder.")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medval`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help(sys.stderr)
        return int(ExitCode.USAGE_ERROR)
    try:
        _check_junit_path(getattr(args, "junit_xml", None))
        return int(_run(args, ["medval", *argv]))
    except SpecError as exc:
        code, kind = ExitCode.USAGE_ERROR, "spec error"
        err: BaseException = exc
    except InputError as exc:
        code, kind, err = ExitCode.DATA_ERROR, "input data error", exc
    except MissingDependencyError as exc:  # an optional feature asked for without its package
        code, kind, err = ExitCode.USAGE_ERROR, "missing package", exc
    except MedvalError as exc:
        code, kind, err = ExitCode.INTERNAL_ERROR, "error", exc
    except KeyboardInterrupt:
        print("medval: interrupted", file=sys.stderr)
        return int(ExitCode.INTERNAL_ERROR)
    except Exception as exc:  # fail closed: never report success after a crash
        code, kind, err = ExitCode.INTERNAL_ERROR, "internal error (please report it)", exc
    if args.debug:
        traceback.print_exception(err)
    from medval._text import printable_text

    print(f"medval: {kind}: {printable_text(str(err))}", file=sys.stderr)
    return int(code)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
