"""`mutatenn run`, `mutatenn init` and `mutatenn report`."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, MutateNNError
from ..ui import console


def register(subparsers) -> None:
    r = subparsers.add_parser(
        "run", help="run a mutation campaign (the embedded default without a file)",
        description="Run a mutation campaign: build every mutant for every target in "
                    "isolated workers, run them on the images, compare with the original, "
                    "and write results.db, results.json, mutants.csv, summary.csv and "
                    "report.html to the output folder. Rerunning resumes.")
    r.add_argument("campaign", nargs="?", metavar="CAMPAIGN.toml",
                   help="campaign file (default: the embedded default campaign)")
    r.add_argument("-o", "--output", metavar="DIR", help="output folder (overrides the file)")
    r.add_argument("-j", "--workers", type=int, metavar="N", help="worker processes")
    r.add_argument("--timeout", type=float, metavar="S", help="seconds per mutant")
    r.add_argument("--keep-artifacts", action="store_true",
                   help="keep each mutant's library, Relax IR, TIR and sources")
    r.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    r.add_argument("--check", action="store_true",
                   help="validate the campaign file and exit")
    r.set_defaults(func=run_command)

    i = subparsers.add_parser("init", help="write a commented example campaign file",
                              description="Write a commented example campaign file (the "
                                          "embedded default campaign).")
    i.add_argument("path", nargs="?", default="campaign.toml", metavar="PATH")
    i.add_argument("--force", action="store_true", help="overwrite an existing file")
    i.set_defaults(func=init_command)

    p = subparsers.add_parser("report", help="regenerate a campaign's reports from its database",
                              description="Regenerate results.json, mutants.csv, summary.csv "
                                          "and report.html from OUTDIR/results.db.")
    p.add_argument("outdir", metavar="OUTDIR")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=report_command)


def _apply_overrides(config, args):
    import dataclasses

    changes = {}
    if args.output:
        changes["output"] = Path(args.output).expanduser().resolve()
    if args.workers is not None:
        if args.workers < 1:
            raise ConfigError("--workers must be at least 1")
        changes["workers"] = args.workers
    if args.timeout is not None:
        if args.timeout <= 0:
            raise ConfigError("--timeout must be positive")
        changes["timeout"] = float(args.timeout)
    if args.keep_artifacts:
        changes["keep_artifacts"] = True
    return dataclasses.replace(config, **changes) if changes else config


def run_command(args) -> int:
    from .config import load_config
    from .engine import execute_campaign
    from .progress import CampaignUI

    config = _apply_overrides(load_config(args.campaign), args)
    if args.check:
        console.print(f"{config.source}: valid; {len(config.operators)} operator(s), "
                      f"{len(config.models)} model(s), {len(config.targets)} target(s); "
                      f"output {config.output}")
        return 0
    result = execute_campaign(config, progress=CampaignUI(quiet=args.quiet))
    if args.quiet and result.get("analysis"):
        from .progress import print_summary

        print_summary(result["analysis"], config.output)
    return 0


def init_command(args) -> int:
    from .config import default_campaign_text

    path = Path(args.path)
    if path.exists() and not args.force:
        raise MutateNNError(f"{path} exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(default_campaign_text(), encoding="utf-8")
    console.print(f"wrote {path}; edit it, then `mutatenn run {path}`")
    return 0


def report_command(args) -> int:
    from .progress import print_summary
    from .report import regenerate

    result = regenerate(args.outdir)
    if not args.quiet:
        print_summary(result, args.outdir)
    return 0
