"""`mutatenn run`, `mutatenn init` and `mutatenn report`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape

from ..errors import MutateNNError
from ..ui import console, errors

RUN_DESCRIPTION = """\
Run a mutation campaign: build every mutant for every target in isolated workers, run
them on the images, compare with the original, and write results.db, results.json,
mutants.csv, summary.csv and report.html to the output folder. Rerunning resumes. The
flags override the campaign file's [campaign] keys."""

RUN_EXIT_CODES = """\
exit codes:
  0      the campaign ran (and its mutation score meets --fail-under / fail_under)
  2      bad input: an invalid campaign file or flag, a missing file, a busy output folder
  3      the mutation score is below --fail-under / fail_under (the reports are written)
  130    interrupted (rerun the same command to resume)
  other  mutatenn itself crashed (a bug; the traceback says where)"""


def _from_file(key: str, what: str, form: str = "{}") -> str:
    """A flag's help: what it sets, and what applies without it (the campaign file's
    ``[campaign]`` key, else the key's default)."""
    from .config.schema import CAMPAIGN_KEYS

    default = {k.name: k.default for k in CAMPAIGN_KEYS}[key]
    shown = {None: "no threshold", True: "on", False: "off"}.get(default) \
        if default is None or isinstance(default, bool) else \
        ",".join(default) if isinstance(default, list) else form.format(default)
    return (f"{what} (default, without the flag: the campaign file's [campaign] {key}, else "
            f"{shown})").replace("%", "%%")


def register(subparsers) -> None:
    r = subparsers.add_parser(
        "run", help="run a mutation campaign (the embedded default without a file)",
        description=RUN_DESCRIPTION, epilog=RUN_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("campaign", nargs="?", metavar="CAMPAIGN.toml",
                   help="campaign file (default: the embedded default campaign)")
    r.add_argument("-o", "--output", metavar="DIR",
                   help=_from_file("output", "output folder", "./{}"))
    r.add_argument("-j", "--workers", type=int, metavar="N",
                   help=_from_file("workers", "worker processes"))
    r.add_argument("--timeout", type=float, metavar="S",
                   help=_from_file("timeout", "seconds one mutant may take to build and run",
                                   "{:g}; the embedded default campaign says 120"))
    r.add_argument("-t", "--targets", metavar="NAME[,NAME]",
                   help=_from_file("targets", "target profiles, comma-separated names or "
                                   "profile files"))
    r.add_argument("--ray", metavar="ADDRESS",
                   help='build and run on a Ray cluster: "auto" (the cluster this machine '
                        'belongs to) or HOST:PORT (sets executor = "ray" and ray_address; '
                        "docs/cluster.md; default: the campaign file's executor, else this "
                        "machine's worker processes)")
    r.add_argument("--keep-artifacts", action="store_true",
                   help=_from_file("keep_artifacts", "keep each mutant's library, Relax IR, "
                                   "TIR and sources"))
    r.add_argument("--prefix-reuse", action="store_true",
                   help=_from_file("prefix_reuse", "run each mutant from the first of the "
                                   "original's cuts where it differs (docs/campaign.md)"))
    r.add_argument("--fail-under", type=float, metavar="SCORE",
                   help=_from_file("fail_under", "exit with code 3 when the mutation score "
                                   "(0 to 1) is below SCORE"))
    r.add_argument("--junit", metavar="FILE",
                   help="also write a JUnit XML file: one test case per mutant (killed = "
                        "passed, survived = failed, not run or ignored = skipped; default: "
                        "none)")
    r.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    r.add_argument("--check", action="store_true",
                   help="validate the campaign file and what it names (decode every image, "
                        "import every model, read the label files), then exit")
    r.set_defaults(func=run_command)

    i = subparsers.add_parser("init", help="write a commented example campaign file",
                              description="Write a commented example campaign file (the "
                                          "embedded default campaign).")
    i.add_argument("path", nargs="?", default="campaign.toml", metavar="PATH",
                   help="file to write (default: campaign.toml)")
    i.add_argument("--force", action="store_true", help="overwrite an existing file")
    i.set_defaults(func=init_command)

    p = subparsers.add_parser("report", help="regenerate a campaign's reports from its database",
                              description="Regenerate results.json, mutants.csv, summary.csv "
                                          "and report.html from OUTDIR/results.db.")
    p.add_argument("outdir", metavar="OUTDIR", help="the campaign's output folder")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=report_command)


def _overrides(args) -> dict:
    """The [campaign] keys the flags override (None: not given); checked with the file."""
    targets = args.targets.split(",") if args.targets is not None else None
    return {"output": args.output, "workers": args.workers, "timeout": args.timeout,
            "targets": targets, "keep_artifacts": True if args.keep_artifacts else None,
            "prefix_reuse": True if args.prefix_reuse else None,
            "fail_under": args.fail_under, "executor": "ray" if args.ray else None,
            "ray_address": args.ray}


def run_command(args) -> int:
    from .api import FLAGS, load_campaign, run_campaign
    from .scoring.gate import EXIT_BELOW_THRESHOLD
    from .running.progress import CampaignUI

    config = load_campaign(args.campaign, overrides=_overrides(args), override_labels=FLAGS)
    if args.check:
        from ..images import skipped_summary
        from ..ui import step
        from .config.inputs import check_inputs

        with step("decoding images and importing models"):
            inputs = check_inputs(config)
        console.print(f"{config.source}: valid; {len(config.operators)} operator(s), "
                      f"{len(inputs.models)} model(s) imported, {len(inputs.images)} image(s) "
                      f"decoded, {len(config.targets)} target(s); output {config.output}",
                      soft_wrap=True)
        if inputs.skipped:
            console.print(f"note: {skipped_summary(inputs.skipped)}", soft_wrap=True)
        return 0
    result = run_campaign(config, progress=CampaignUI(quiet=args.quiet))
    if args.junit:
        path = result.write_junit(args.junit)
        if not args.quiet:
            console.print(f"JUnit report: {path}", highlight=False)
    failure = result.threshold_failure()
    if failure:
        errors.print(f"[bold red]fail:[/] {escape(failure)}", soft_wrap=True)
        return EXIT_BELOW_THRESHOLD
    return 0


def init_command(args) -> int:
    from .config.campaign_file import default_campaign_text

    path = Path(args.path)
    if path.exists() and not args.force:
        raise MutateNNError(f"{path} exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(default_campaign_text(), encoding="utf-8")
    console.print(f"wrote {path}; edit it, then `mutatenn run {path}`")
    return 0


def report_command(args) -> int:
    from .running.progress import print_summary
    from .scoring.report import regenerate

    result = regenerate(args.outdir)
    if not args.quiet:
        print_summary(result, args.outdir)
    return 0
