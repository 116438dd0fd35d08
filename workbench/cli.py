"""The `workbench` command.

    workbench run [NOTEBOOK ...] [--quick] [-p NAME VALUE ...] [--against REF]   headless notebook runs
    workbench compare RUN_A RUN_B [--rtol R] [--atol A]                        is a rerun the same?
    workbench claims RUN [--study S] [--json]                                 the claims ledger of a run
    workbench sweep NOTEBOOK [-p NAME VALUE ...] --executor {local,slurm} ...   a study's cells as submitit jobs
    workbench pretrain [--out DIR] [--steps N] [--seed S] [--force]            make tiny-world-clip
    workbench models                                                          accepted model names

Exit codes: 0 success, 1 a notebook failed, a number is out of tolerance or a claim's verdict changed,
or a file could not be written (a full disk: named, no partial file left), 2 bad input (nothing was run;
no claims to show), 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Sequence

MODEL_FILES = ("open_clip_model.safetensors", "open_clip_config.json")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,compare,claims,sweep,pretrain,models}")

    run = sub.add_parser("run", help="execute notebooks headlessly into runs/<id>/ and write a summary")
    run.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                     help="stem (00_world_and_model), number (00) or path; default: every notebooks/NN_*.ipynb")
    run.add_argument("--quick", action="store_true", help="pass quick=True (small, fast study presets)")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="override a parameter; VALUE is read as a Python literal, else as a string")
    run.add_argument("--runs-dir", type=Path, default=None, help="where run folders go (default: runs/)")
    run.add_argument("--notebooks-dir", type=Path, default=None, help="where NN_*.ipynb are (default: notebooks/)")
    run.add_argument("--timeout", type=int, default=None, help="whole seconds allowed per cell (default: no limit)")
    run.add_argument("--list", action="store_true", help="list the available notebooks and their parameters")
    run.add_argument("--no-progress", action="store_true", help="no per-notebook progress output")
    run.add_argument("--against", type=Path, default=None, metavar="REF",
                     help="then compare every metric with REF (a run folder, or notebooks/reference for --quick)")
    run.add_argument("--until-resolved", action="store_true",
                     help="add seeds, a batch at a time, to the cells of claims still unresolved until every claim is "
                          "resolved or the budget is spent (at most 4 looks, each judged at 5%% / 4)")
    run.add_argument("--budget", type=float, default=None, metavar="MINUTES",
                     help="with --until-resolved: stop adding seeds after this many minutes per notebook")
    run.set_defaults(func=cmd_run)

    cmp = sub.add_parser(
        "compare", help="every metric and claim verdict of two runs side by side; exit 1 if one differs",
        description="Every number of RUN_B's notebooks against RUN_A's, with its difference and tolerance, and "
                    "every claim whose verdict differs between the two runs (a line 'CLAIM MCF-2: supported -> "
                    "unresolved'). Exit 1 when a number is out of tolerance or missing on one side, or a claim's "
                    "verdict changed (claims are compared where both runs' result.json carry them).")
    cmp.add_argument("run_a", type=Path, metavar="RUN_A", help="a run folder (runs/<id>) or a reference folder")
    cmp.add_argument("run_b", type=Path, metavar="RUN_B", help="the run to check")
    cmp.add_argument("--rtol", type=float, default=None, help="relative tolerance (default: 0 on the same "
                     "machine and threads, 0.05 across machines)")
    cmp.add_argument("--atol", type=float, default=None, help="absolute tolerance floor (default: 0 / 0.02)")
    cmp.add_argument("--failures", action="store_true", help="print only the numbers out of tolerance")
    cmp.set_defaults(func=cmd_compare)

    claims = sub.add_parser(
        "claims", help="the claims ledger of a run: each paper claim, our difference, its verdict",
        description="The claims ledger of a run folder, as the run report opens with it: per claim the paper's "
                    "words and number, our difference with its unadjusted 95% interval, the seeds and the verdict "
                    "(Holm within each study). Exit 2 if RUN is not a run folder or states no claims.")
    claims.add_argument("run", type=Path, metavar="RUN", help="a run folder (runs/<id>)")
    claims.add_argument("--study", default=None, metavar="S",
                        help="only this study's claims (its name, notebook stem or number)")
    claims.add_argument("--json", action="store_true", help="print the claims as result.json has them (JSON)")
    claims.set_defaults(func=cmd_claims)

    pre = sub.add_parser("pretrain", help="pretrain tiny-world-clip on the world (workbench.pretrain)")
    pre.add_argument("--out", type=Path, default=None, help="output folder (default: data/tiny-world-clip)")
    pre.add_argument("--steps", type=int, default=None, help="training steps (default: PretrainConfig.steps)")
    pre.add_argument("--seed", type=int, default=None, help="training seed (default: PretrainConfig.seed)")
    pre.add_argument("--force", action="store_true", help="overwrite a folder that already holds a model")
    pre.set_defaults(func=cmd_pretrain)

    models = sub.add_parser("models", help="list the accepted model names")
    models.set_defaults(func=cmd_models)

    from workbench.sweep import add_parser as add_sweep  # `workbench sweep`: a study's cells on SLURM or locally

    add_sweep(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `workbench models | head`: stop quietly
        sys.stdout = open(os.devnull, "w")
        return 0


def _error(command: str, message: str, code: int = 2) -> int:
    print(f"workbench {command}: error: {message}", file=sys.stderr)
    return code


def cmd_run(args: argparse.Namespace) -> int:
    from workbench import runner

    nb_dir = args.notebooks_dir or runner.NOTEBOOKS_DIR
    if args.list:
        return _list_notebooks(nb_dir)
    if args.timeout is not None and not args.timeout > 0:
        return _error("run", f"--timeout {args.timeout!r}: give the seconds allowed per cell, > 0")
    if args.against is not None and not args.against.is_dir():
        return _error("run", f"--against {args.against}: not a folder (a run folder, or notebooks/reference)")
    if args.against is not None:
        from workbench.compare import notebooks_in

        if not notebooks_in(args.against):
            return _error("run", f"--against {args.against}: holds no <notebook>/result.json and no NN_*.json "
                                 "(a run folder, or notebooks/reference)")
    if args.budget is not None and not (args.until_resolved and math.isfinite(args.budget) and args.budget > 0):
        return _error("run", f"--budget {args.budget!r}: give minutes > 0, with --until-resolved")
    if args.until_resolved:  # read by kit.Study.run in each notebook's kernel
        from workbench.studies.kit.study import SEQUENTIAL_ENV

        os.environ[SEQUENTIAL_ENV] = "" if args.budget is None else str(args.budget)
    params: dict = {}
    for name, value in args.param:
        if name in params:
            return _error("run", f"parameter {name!r} given twice (-p {name} ...)")
        try:
            params[name] = runner.parse_value(value, name)
        except ValueError as e:
            return _error("run", str(e))
    try:
        summary = runner.run_notebooks(args.notebooks or None, quick=args.quick, params=params,
                                       runs_dir=args.runs_dir, progress=not args.no_progress,
                                       notebooks_dir=nb_dir, timeout=args.timeout)
    except (ValueError, FileNotFoundError) as e:
        return _error("run", str(e))
    except OSError as e:  # WriteError: a full disk or a file-size limit, naming the file
        return _error("run", str(e), code=1)
    for r in summary.failures:
        print(f"FAILED {r.name}: {r.error}\n  executed notebook: {r.executed}", file=sys.stderr)
    print(f"summary: {summary.summary_md}  (html: {summary.summary_html})")
    print(summary.verdict())
    if args.against is not None and summary.results:
        from workbench import compare

        ok = [r.name for r in summary.results if r.status == "ok"]
        try:
            comparisons = compare.compare(args.against, summary.run_dir, notebooks=ok)
        except (FileNotFoundError, compare.ResultError) as e:
            return _error("run --against", str(e))
        print(compare.report(comparisons, show="failures"))
        if not all(c.ok for c in comparisons):
            return 1
    return 0 if summary.ok else 1


def cmd_compare(args: argparse.Namespace) -> int:
    from workbench import compare

    for name, value in (("--rtol", args.rtol), ("--atol", args.atol)):
        if value is not None and not (value >= 0 and math.isfinite(value)):
            return _error("compare", f"{name} {value!r} must be >= 0 and finite (an infinite tolerance would pass "
                                     "every number)")
    try:
        comparisons = compare.compare(args.run_a, args.run_b, rtol=args.rtol, atol=args.atol)
    except (FileNotFoundError, ValueError) as e:  # a missing, truncated or odd result.json (ResultError): named
        return _error("compare", str(e))
    print(compare.report(comparisons, show="failures" if args.failures else "all"))
    return 0 if all(c.ok for c in comparisons) else 1


def cmd_claims(args: argparse.Namespace) -> int:
    from workbench.runner import ledger_text, run_ledger

    try:
        ledger, claims = run_ledger(args.run, args.study)
    except ValueError as e:
        return _error("claims", str(e))
    print(json.dumps(claims, indent=1) if args.json else ledger_text(ledger))
    return 0


def _list_notebooks(nb_dir: Path) -> int:
    from workbench import runner

    paths = runner.available_notebooks(nb_dir)
    if not paths:
        print(f"no notebooks ({nb_dir} holds no NN_*.ipynb)")
    for p in paths:
        declared = runner.notebook_parameters(p)
        print(f"{p.stem}: " + ", ".join(f"{k}={v.get('default')}" for k, v in declared.items()))
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from workbench.models.registry import TINY_DIR

    out = args.out or TINY_DIR
    from workbench.checks import check_writable_dir

    try:
        check_writable_dir(out, "output folder (--out)", make=False)  # nothing is made before the model exists
    except ValueError as e:
        return _error("pretrain", str(e))
    held = [f for f in MODEL_FILES if (out / f).exists()]
    if held and not args.force:
        return _error("pretrain", f"{out} already holds a model ({', '.join(held)}); nothing was changed. "
                                  f"Pass --force to overwrite it, or choose another --out")
    from workbench.pretrain import PretrainConfig, pretrain

    overrides = {k: v for k, v in (("steps", args.steps), ("seed", args.seed)) if v is not None}
    try:
        cfg = PretrainConfig(**overrides)
    except (TypeError, ValueError) as e:
        return _error("pretrain", str(e))
    if cfg.steps < 1:
        return _error("pretrain", f"--steps must be >= 1, got {cfg.steps}")
    metrics = pretrain(cfg, out)
    shown = {k: v for k, v in metrics.items() if k != "history"}
    print(json.dumps(shown, indent=1))
    print(f"wrote {out}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from workbench.models import list_models

    for name in list_models():
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
