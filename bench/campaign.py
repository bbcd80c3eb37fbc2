"""Benchmark: what `mutatenn run` costs, split by stage, against the campaign's physical limit.

    python bench/campaign.py [--repeat 3] [--baseline PATH/TO/mutatenn] [--scaling] [--prefix-reuse]
                             [--model FILE] [--campaign FILE] [--images N] [--sample N]
                             [--targets T[,T]] [--naive N] [--json out.json]

It times what a user runs: the ``mutatenn`` command (the README's first command, ``mutatenn
run``, with ``-o`` into a fresh folder each time, and a campaign file only when an option needs
one), as a child process, so the wall time includes the interpreter's start and the imports.
Each run's wall time is split from its own database: import (the models and images, in the
main process), planning, execute (workers building and running; per mutant kind, graph and
kernel, the sums over workers of build, library load and run), the reference runtime check,
the analysis, the reports, and the rest (the interpreter's start, starting the workers).

Beside it, the same run measures the campaign's physical limit: one full build of each
original, plus one pass of the campaign's images through the original's library for every
build the campaign made, divided by the workers (measured in a child process with the
workers' thread count), i.e. what the campaign would cost if a mutant cost nothing but
running its images. It prints the campaign's ratio to that limit.

``--baseline`` names another ``mutatenn`` executable (e.g. today's main installed in its own
virtual environment): the two are run alternately (ABAB ..., ``--repeat`` times each) and the
medians compared, with min-max beside each. ``--scaling`` also runs the campaign with one
worker, alternating with the default two; ``--prefix-reuse`` the same campaign with
``prefix_reuse = true`` (runs from each mutant's first changed cut), alternating too, and says
whether the two gave the same statuses and verdicts. ``--naive N`` measures the MutateNN
paper's way on N mutants (re-import, full build, export, reload, run: sequential) and
extrapolates it to every mutant with a site. ``--model FILE`` replaces the default model (e.g. the onnx wheel's
ResNet50: ``--model resnet50``, paper preset, ``--sample 2``).

It imports the installed mutatenn, as a user runs it after ``pip install .``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
ZOO = ("resnet50", "squeezenet", "shufflenet", "densenet121")


def model_file(name: str | None) -> str | None:
    """A model path; a name of the onnx wheel's model zoo (``resnet50``) means that file."""
    if name in ZOO:
        import onnx

        return str(Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" /
                   f"light_{name}.onnx")
    # the campaign file is written elsewhere: a path relative to here must not become
    # relative to it
    return None if name is None else str(Path(name).resolve())


def replicate_images(count: int, folder: Path, source: str | None) -> list[str]:
    """``count`` image files in ``folder``: the default photographs (or the images of the
    folder ``source``) in turn, under distinct names."""
    from PIL import Image as PILImage

    import mutatenn_passes as mn

    images = mn.load_images([source]) if source else mn.default_images()
    paths = []
    for i in range(count):
        image = images[i % len(images)]
        path = folder / f"{i:03d}-{image.name}.png"
        PILImage.fromarray(image.pixels).save(path)
        paths.append(str(path))
    return paths


def campaign_file(folder: Path, args, prefix_reuse: bool = False) -> Path | None:
    """The campaign the options describe (with ``prefix_reuse = true`` when asked), written to
    ``folder``; None when they describe the embedded default (then the bench runs plain
    ``mutatenn run``)."""
    if args.campaign and not prefix_reuse:
        return Path(args.campaign)
    if args.campaign:
        text = Path(args.campaign).read_text()
        if "[campaign]" not in text:
            text = "[campaign]\n" + text
        path = folder / "prefix-reuse.toml"
        path.write_text(text.replace("[campaign]", "[campaign]\nprefix_reuse = true", 1))
        return path
    if not (args.model or args.images or args.sample is not None or args.targets
            or prefix_reuse):
        return None
    lines = ['[campaign]', 'name = "bench"'] + (["prefix_reuse = true"] if prefix_reuse else [])
    if args.targets:
        lines.append(f"targets = {json.dumps(args.targets.split(','))}")
    if args.model:
        lines += ["[[models]]", f"path = {json.dumps(model_file(args.model))}"]
    if args.images:
        images = folder / "images"
        images.mkdir(exist_ok=True)
        paths = replicate_images(args.images, images, args.image_source)
        lines += ["[images]", f"paths = {json.dumps(paths)}"]
    lines += ["[operators]", 'use = ["paper"]',
              f"sample = {5 if args.sample is None else args.sample}"]
    path = folder / ("prefix-reuse.toml" if prefix_reuse else "campaign.toml")
    path.write_text("\n".join(lines) + "\n")
    return path


#: The stages of a run's wall time; "other" is the rest: the interpreter's start and imports,
#: starting the workers, the summary (and the reports, for versions that did not time them).
STAGES = ("import", "plan", "execute", "reference", "analysis", "reports", "other")


def run_cli(exe: str, campaign: Path | None, out: Path, workers: int | None) -> float:
    """``exe run [campaign] -o out -q`` from scratch; its wall time."""
    cmd = [exe, "run", *([str(campaign)] if campaign else []), "-o", str(out), "-q"]
    if workers:
        cmd += ["-j", str(workers)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode not in (0, 3):
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall


def split(out: Path) -> dict:
    """The stages of the run recorded in ``out``'s database."""
    db = sqlite3.connect(out / "results.db")
    meta = {k: json.loads(v) for k, v in db.execute("select key, value from meta")}
    secs = meta["last_run_seconds"]
    figures = {
        "import": secs["plan_import"],  # the models and images, before planning
        "plan": secs["plan_wall"],
        "execute": secs["execute_wall"],
        "reference": secs.get("reference_wall", 0.0),
        "analysis": secs.get("analysis", 0.0),
        "reports": meta.get("reports_seconds", 0.0),  # recorded since this bench was written
        "workers": meta["executor"]["workers"], "threads": meta["executor"]["threads"],
    }
    rows = db.execute("select t.kind, t.level, count(*), sum(r.build_s), sum(r.load_s), "
                      "sum(r.run_s), sum(r.prepare_s) from results r join tasks t "
                      "on t.key = r.key where r.build_s is not null group by t.kind, t.level")
    figures["built"] = 0
    for kind, level, n, build, load, run, prepare in rows:
        figures[f"{level or kind}: n"] = n
        figures[f"{level or kind}: build+load+run"] = (build or 0) + (load or 0) + (run or 0)
        figures[f"{level or kind}: build/load/run"] = (build or 0, load or 0, run or 0)
        figures["built"] += n
    figures["statuses"] = dict(db.execute(
        "select status, count(*) from results group by status").fetchall())
    figures["verdicts"] = _verdicts(db)
    figures["images"] = len(meta["images"])
    paths = [m.get("path") for m in meta["config"].get("models") or [{}]]
    figures["builds_per_original"] = {
        f"{paths[index]}@{target}": n for index, target, n in db.execute(
            "select t.model_index, t.target_ref, count(*) from results r join tasks t "
            "on t.key = r.key where r.build_s is not null group by 1, 2")}
    db.close()
    return figures


def _verdicts(db) -> str:
    """A fingerprint of every task's status (compared between runs and versions)."""
    import hashlib

    rows = db.execute("select key, status from results order by key").fetchall()
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:12]


LIMIT_SNIPPET = r"""
import json, os, statistics, sys, time
os.environ["TVM_NUM_THREADS"] = sys.argv[1]
import mutatenn_passes as mn
from mutatenn_passes.images import preprocess
spec = json.loads(sys.argv[2])
out = {}
for model_path in spec["models"]:
    model = mn.load_model(model_path)
    images = mn.load_images(spec["images"]) if spec["images"] else mn.default_images()
    batch = preprocess(images, model.preprocess)
    for target in spec["targets"]:
        t0 = time.perf_counter()
        art = mn.build(model, target)  # a full build, lowering included
        build = time.perf_counter() - t0
        art.run_array(batch)  # warm-up: load the library, start the thread pool
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            art.run_array(batch)
            runs.append(time.perf_counter() - t0)
        out[f"{model_path}@{target}"] = {"build": build, "batch": statistics.median(runs)}
print(json.dumps(out))
"""


def physical_limit(figures: dict, images: list[str] | None) -> dict:
    """One full build of each original + every build's images once through its original's
    library, over the workers (see the module doc)."""
    pairs = [key.rsplit("@", 1) for key in figures["builds_per_original"]]
    spec = {"models": sorted({None if m == "None" else m for m, _ in pairs}, key=str),
            "targets": sorted({t for _, t in pairs}), "images": images}
    # run outside any checkout: `python -c` would import a mutatenn_passes folder in the
    # working directory (unbuilt) instead of the installed package
    done = subprocess.run([sys.executable, "-c", LIMIT_SNIPPET, str(figures["threads"]),
                           json.dumps(spec)], capture_output=True, text=True, check=True,
                          cwd=tempfile.gettempdir())
    parts = json.loads(done.stdout.strip().splitlines()[-1])
    build = sum(parts[key]["build"] for key in figures["builds_per_original"])
    runs = sum(n * parts[key]["batch"] for key, n in figures["builds_per_original"].items())
    return {"limit": build + runs / figures["workers"], "original_builds": build,
            "batch": runs / figures["built"]}


def naive_mutants(n: int, campaign: Path | None) -> dict:
    """The paper tool's way on ``n`` of the campaign's mutants (round-robin over operators),
    in this process: seconds per mutant and the mutants it would build."""
    from mutatenn_passes.artifact import load_artifact
    from mutatenn_passes.build import build
    from mutatenn_passes.campaign.config.campaign_file import load_config
    from mutatenn_passes.campaign.planning.plan import (load_campaign_images,
                                                        load_campaign_model, make_plan)

    config = load_config(campaign)
    images = load_campaign_images(config)
    mutants = make_plan(config).mutants()
    buildable = [t for t in mutants if t.needs_build]
    by_op: dict[str, list] = {}
    for t in buildable:
        by_op.setdefault(t.operator, []).append(t)
    chosen = []
    while len(chosen) < n and any(by_op.values()):
        for tasks in by_op.values():
            if tasks and len(chosen) < n:
                chosen.append(tasks.pop(0))
    seconds = []
    for task in chosen:
        t0 = time.perf_counter()
        model = load_campaign_model(config.models[task.model_index])  # re-import
        art = build(model, task.target_ref, **task.definition().build_arguments())
        with tempfile.TemporaryDirectory(prefix="mutatenn-naive-") as tmp:
            load_artifact(art.export(Path(tmp) / "mutant.so")).run(images)
        seconds.append(time.perf_counter() - t0)
        print(f"  naive {task.label}: {seconds[-1]:.1f} s", flush=True)
    would_build = sum(1 for t in mutants if t.planned_status != "not_applicable") + \
        len(config.targets) * len(config.models)
    return {"per_mutant": statistics.mean(seconds), "would_build": would_build,
            "measured": len(seconds)}


def median_spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f} s ({min(values):.1f}–{max(values):.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (default 3)")
    parser.add_argument("--baseline", metavar="EXE",
                        help="another mutatenn executable to run alternately (before/after)")
    parser.add_argument("--scaling", action="store_true",
                        help="also run with one worker, alternately with the default")
    parser.add_argument("--prefix-reuse", action="store_true",
                        help="also run with prefix_reuse = true, alternately with the default")
    parser.add_argument("--campaign", help="campaign file (default: the embedded default)")
    parser.add_argument("--model", help="model file, or resnet50/squeezenet/... from the onnx "
                        "wheel (paper preset)")
    parser.add_argument("--images", type=int, metavar="N",
                        help="N images (the default photographs, or --image-source, repeated)")
    parser.add_argument("--image-source", metavar="DIR", help="folder the --images come from")
    parser.add_argument("--sample", type=int, help="sites sampled per operator (default 5)")
    parser.add_argument("--targets", help="comma-separated target profiles")
    parser.add_argument("--naive", type=int, default=0, metavar="N",
                        help="measure the paper tool's way on N mutants (default 0: skip)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="mutatenn-bench-")
    root = Path(tmp.name)
    campaign = campaign_file(root, args)
    exe = str(Path(sys.executable).with_name("mutatenn"))
    sides = {"ours": (exe, None, campaign)}
    if args.baseline:
        sides["baseline"] = (args.baseline, None, campaign)
    if args.scaling:
        sides["ours, 1 worker"] = (exe, 1, campaign)
    if args.prefix_reuse:
        sides["ours, prefix reuse"] = (exe, None, campaign_file(root, args, prefix_reuse=True))
    print(f"== campaign: {campaign or 'the embedded default (mutatenn run)'}; "
          f"{args.repeat} run(s) per side, alternating; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    for r in range(args.repeat):
        for name, (side_exe, workers, side_campaign) in sides.items():
            out = root / f"{name.replace(' ', '_').replace(',', '')}-{r}"
            wall = run_cli(side_exe, side_campaign, out, workers)
            figures = split(out)
            figures["wall"] = wall
            figures["other"] = wall - sum(figures[s] for s in STAGES[:-1])
            runs[name].append(figures)
            print(f"  {name:<16} run {r + 1}: {wall:6.1f} s wall "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    images = None
    if campaign is not None:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib

        images = tomllib.loads(campaign.read_text()).get("images", {}).get("paths")
    ours = runs["ours"]
    limit = physical_limit(ours[0], images)
    report = {"campaign": str(campaign or "default"), "limit": limit,
              "runs": runs, "load_average_end": os.getloadavg()[0]}

    print(f"\n== {ours[0]['built']} builds ({ours[0]['images']} image(s) each), "
          f"{ours[0]['workers']} worker(s) x {ours[0]['threads']} thread(s)")
    print(f"   physical limit: {limit['limit']:.1f} s = original build(s) "
          f"{limit['original_builds']:.1f} s + {ours[0]['built']} x {limit['batch']:.3f} s "
          f"per pass of the images / {ours[0]['workers']} worker(s)")
    for name, figs in runs.items():
        walls = [f["wall"] for f in figs]
        print(f"   {name:<16} wall {median_spread(walls)}  = "
              f"{statistics.median(walls) / limit['limit']:.2f}x the limit; verdicts "
              f"{'identical' if len({f['verdicts'] for f in figs}) == 1 else 'DIFFER'} "
              f"across runs")
        print("     " + ", ".join(f"{s} {statistics.median(f[s] for f in figs):.1f}"
                                  for s in STAGES) + " s (medians)")
        for kind in ("original", "graph", "kernel"):
            if f"{kind}: n" in figs[0]:
                n = figs[0][f"{kind}: n"]
                parts = [statistics.median(f[f"{kind}: build/load/run"][i] for f in figs)
                         for i in range(3)]
                print(f"     {kind:<8} {n:4d} builds: build {parts[0]:.1f} + load "
                      f"{parts[1]:.1f} + run {parts[2]:.1f} s summed over workers "
                      f"({sum(parts) / n:.3f} s per build)")
    walls = {name: statistics.median(f["wall"] for f in figs) for name, figs in runs.items()}
    if "baseline" in runs:
        same = {f["verdicts"] for f in runs["baseline"]} == {f["verdicts"] for f in ours}
        print(f"   baseline/ours = {walls['baseline'] / walls['ours']:.2f}x; statuses "
              f"{'identical' if same else 'DIFFER'} between the two")
        report["ratio_baseline_over_ours"] = walls["baseline"] / walls["ours"]
    if args.prefix_reuse:
        same = {f["verdicts"] for f in runs["ours, prefix reuse"]} == \
            {f["verdicts"] for f in ours}
        ratio = walls["ours"] / walls["ours, prefix reuse"]
        print(f"   without / with prefix reuse = {ratio:.2f}x; statuses and verdicts "
              f"{'identical' if same else 'DIFFER'} between the two")
        report["ratio_without_over_with_prefix_reuse"] = ratio
    if args.scaling:
        print(f"   1 worker / 2 workers = {walls['ours, 1 worker'] / walls['ours']:.2f}x")
        report["ratio_one_over_two_workers"] = walls["ours, 1 worker"] / walls["ours"]
    if args.naive:
        naive = naive_mutants(args.naive, campaign)
        total = naive["per_mutant"] * naive["would_build"]
        print(f"   naive paper tool: {naive['per_mutant']:.2f} s per mutant x "
              f"{naive['would_build']} builds = {total:.0f} s (measured on "
              f"{naive['measured']}); naive/ours = {total / walls['ours']:.1f}x")
        report["naive"] = naive | {"ratio_naive_over_ours": total / walls["ours"]}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
