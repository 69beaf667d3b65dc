"""``python -m bert_repro.experiments {list,plan,launch}`` (README: "Experiments and sweeps")."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

from bert_repro.errors import UserError
from bert_repro.experiments.catalogue import REPO, Plan, Run, definitions, expand, load
from bert_repro.experiments.estimate import CPU_FLOPS

# run.py arguments per --launcher (conf/hydra/launcher/); local = Hydra's sequential launcher.
LAUNCHERS = {
    "local": [],
    "joblib": ["hydra/launcher=local_parallel"],
    "slurm": ["hydra/launcher=slurm"],
}


def command(run: Run, launcher: str, extra: list[str]) -> list[str]:
    """The run.py command line of one run (hydra.* extras reach the launcher here)."""
    hydra_extra = [e for e in extra if e.startswith("hydra")]
    return [sys.executable, "run.py", *run.arguments(), *LAUNCHERS[launcher], *hydra_extra]


def print_plan(plan: Plan, show_points: bool) -> None:
    print(f"{plan.name} [{plan.scale}]: {plan.title}")
    print(f"  {plan.about}")
    print(
        f"  compute: FLOPs ~ 6 x non-embedding params x training tokens; CPU hours assume "
        f"{CPU_FLOPS:.1e} FLOP/s (measured on this 2-core box, bert_repro/experiments/estimate.py)"
    )
    print()
    columns = f"{'points':>6} {'done':>5} {'params':>7} {'tokens/pt':>10} {'PFLOP':>8} {'CPU h':>8}"
    print(f"{'#':>3}  {'run':<44} {columns}")
    index = {id(run): i for i, run in enumerate(plan.runs, 1)}
    for i, run in enumerate(plan.runs, 1):
        statuses = [p.status() for p in run.points]
        est = run.estimate
        n = len(run.points)
        print(
            f"{i:>3}  {run.label:<44} {n:>6} {statuses.count('done'):>5} "
            f"{est.non_embedding_params / 1e6:>6.1f}M {est.tokens / 1e6:>9.2f}M "
            f"{n * est.flops / 1e15:>8.3f} {n * est.cpu_hours:>8.1f}"
        )
        needs = f"   (after #{index[id(run.needs)]})" if run.needs is not None else ""
        print(f"       python run.py {shlex.join(run.arguments())}{needs}")
        shown = run.points if show_points or n == 1 else []
        for point, status in zip(shown, statuses, strict=False):
            values = " ".join(f"{k}={v}" for k, v in point.values.items())
            print(f"       -> {point.run_dir} [{status}] {values}".rstrip())
    points = [p for run in plan.runs for p in run.points]
    done = sum(p.status() == "done" for p in points)
    flops = sum(len(run.points) * run.estimate.flops for run in plan.runs)
    hours = sum(len(run.points) * run.estimate.cpu_hours for run in plan.runs)
    print(
        f"\ntotal: {len(plan.runs)} runs, {len(points)} points ({done} done), "
        f"{flops / 1e15:.3f} PFLOP, ~{hours:,.1f} CPU hours on this machine"
    )


def launch(plan: Plan, launcher: str, extra: list[str], dry_run: bool) -> int:
    """Run the plan in order; stop before a run whose checkpoint run did not finish."""
    failed = []
    for run in plan.runs:
        if run.done():
            print(f"skip {run.label}: all {len(run.points)} point(s) finished")
            continue
        if run.needs is not None and not dry_run and not run.needs.done():
            print(f"stop: {run.label} needs {run.needs.label}, which has not finished")
            return 1
        cmd = command(run, launcher, extra)
        print(f"$ {shlex.join(cmd)}", flush=True)
        if dry_run:
            continue
        subprocess.run(cmd, cwd=REPO, check=False)
        if not run.done():
            # run.py returns 0 even when a multirun point fails (one line each), so count records.
            missing = sum(p.status() != "done" for p in run.points)
            print(f"{run.label}: {missing} of {len(run.points)} point(s) did not finish")
            failed.append(run.label)
    if failed:
        print(f"unfinished: {', '.join(failed)}; relaunch the same command to resume them")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bert_repro.experiments",
        description="Plan or launch the runs behind one paper table (experiments/*.yaml).",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="the definitions and their scales")
    for action in ("plan", "launch"):
        p = sub.add_parser(action, help=f"{action} one definition's runs")
        p.add_argument("name", help="e.g. table1_glue (see `list`)")
        p.add_argument("--scale", default="cpu", help="paper | cpu (default: %(default)s)")
        p.add_argument("overrides", nargs="*", help="extra run.py overrides for every run")
    sub.choices["plan"].add_argument("--points", action="store_true", help="list every point")
    sub.choices["launch"].add_argument("--launcher", choices=sorted(LAUNCHERS), default="local")
    sub.choices["launch"].add_argument("--dry-run", action="store_true", help="print, run nothing")
    args, rest = parser.parse_known_args(argv)  # overrides may follow the options too
    if (args.action == "list" and rest) or any(r.startswith("-") for r in rest):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    overrides = [*getattr(args, "overrides", []), *rest]
    try:
        if args.action == "list":
            for name in definitions():
                definition = load(name)
                print(f"{name:<20} {', '.join(definition['scales']):<12} {definition['title']}")
            return 0
        plan = expand(args.name, args.scale, overrides)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.action == "plan":
        print_plan(plan, args.points)
        return 0
    return launch(plan, args.launcher, overrides, args.dry_run)


if __name__ == "__main__":
    raise SystemExit(main())
