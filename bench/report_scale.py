"""Benchmark: `mutatenn report` on synthetic campaigns of paper size (issue #17).

    python bench/report_scale.py [--mutants 1000 10000 50000] [--keep DIR]
                                 [--json out.json]

Per size N (mutant tasks, i.e. mutant x target):

1. fills a campaign database with N synthetic results (`synthetic_store.fill_store`: three
   models, three targets, every registered operator, five images, 1000 classes, every status;
   the IR diffs and sites the real planner made on the tiny test model), building nothing;
2. runs `mutatenn report` on it in a fresh process and takes its wall time and peak RSS
   (``os.wait4``: the kernel's accounting of that one child), and the same process's start-up
   alone (`mutatenn --version`: importing mutatenn, TVM and the subcommands);
3. measures the files written (report.html, results.json and .jsonl, the CSVs, the side pages);
4. opens report.html in headless Chromium: the wall time of a screenshot of it, less that of a
   screenshot of an empty page (the browser's own start-up), is the page's first paint with
   its scripts run (the screenshot is taken after the load event); and the filtered mutants
   table is read back from the DOM (``#killed=1``);
5. loads results.jsonl with pandas when pandas is installed (not a dependency).

It prints one row per N, the targets at 10k (analysis + reports <= 15 s and <= 1 GB, report.html
<= 10 MB, first paint <= 2 s), and the CPU seconds per 1000 mutants beside the smallest N's
(1.0× = linear growth; CPU rather than wall time, which other jobs on the machine inflate: the
1-minute load average before each report is printed too).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The synthetic store and the tiny campaign it plans are the checkout's (bench/, tests/), not
# the installed package's; appended, so mutatenn_passes is still the installed one.
sys.path.append(str(Path(__file__).resolve().parents[1]))

from bench.synthetic_store import fill_store, planned_examples  # noqa: E402

TARGETS_AT_10K = {"report_s": 15.0, "peak_rss_mb": 1024.0, "html_mb": 10.0, "paint_s": 2.0}


def run_measured(argv: list[str]) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds (user + system), peak RSS (MB) and exit status of one child
    process."""
    t0 = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return (time.perf_counter() - t0, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
            child.returncode)


def browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or \
        shutil.which("google-chrome")


def chromium(exe: str, profile: Path, *args: str) -> tuple[float, str]:
    """Wall seconds and stdout of one headless Chromium run."""
    flags = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", "--window-size=1400,1000"]
    t0 = time.perf_counter()
    out = subprocess.run(flags + list(args), capture_output=True, text=True, timeout=300)
    return time.perf_counter() - t0, out.stdout


def first_paint(exe: str, page: Path, work: Path, repeat: int = 3) -> dict:
    """The page's screenshot time less an empty page's (best of ``repeat`` each)."""
    blank = work / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body>blank</body></html>")
    shot = work / "shot.png"
    times = {}
    for name, target in (("blank", blank), ("page", page)):
        times[name] = min(chromium(exe, work / "profile", f"--screenshot={shot}",
                                   target.as_uri())[0] for _ in range(repeat))
    _, dom = chromium(exe, work / "profile", "--dump-dom", page.as_uri() + "#killed=1")
    table = dom[dom.find('id="mutants"'):]
    count = re.search(r'class="dt-count" data-shown="(\d+)"', table)
    table = table[:table.find("</table>")]
    return {"screenshot_s": times["page"], "blank_s": times["blank"],
            "paint_s": max(0.0, times["page"] - times["blank"]),
            "killed_rows_shown": len(re.findall(r"<tr[^>]*data-key", table)),
            "killed_rows_matched": int(count.group(1)) if count else None}


def folder_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def measure(n: int, examples: list[dict], folder: Path, exe: str | None) -> dict:
    t0 = time.perf_counter()
    fill_store(folder, n, examples).close()
    row = {"mutants": n, "fill_s": time.perf_counter() - t0,
           "db_mb": (folder / "results.db").stat().st_size / 2**20}
    cli = [sys.executable, "-m", "mutatenn_passes.cli"]
    row["startup_s"], row["startup_cpu_s"], _, _ = run_measured(cli + ["--version"])
    row["load_before"] = os.getloadavg()[0]
    row["report_s"], row["report_cpu_s"], row["peak_rss_mb"], status = run_measured(
        cli + ["report", str(folder), "-q"])
    if status != 0:
        raise SystemExit(f"mutatenn report failed on {folder} (exit {status})")
    mb = 2**20
    for name in ("report.html", "results.json", "results.jsonl", "mutants.csv",
                 "cross_target.csv"):
        p = folder / name
        row[name.replace(".", "_") + "_mb"] = p.stat().st_size / mb if p.exists() else None
    row["html_mb"] = row.pop("report_html_mb")
    row["side_files"], side = folder_size(folder / "report_files")
    row["side_mb"] = side / mb
    if exe:
        with tempfile.TemporaryDirectory(prefix="mutatenn-paint-") as work:
            row.update(first_paint(exe, folder / "report.html", Path(work)))
    try:
        import pandas
    except ImportError:
        row["pandas_jsonl_s"] = None
    else:
        if (folder / "results.jsonl").exists():
            t0 = time.perf_counter()
            frame = pandas.read_json(folder / "results.jsonl", lines=True)
            row["pandas_jsonl_s"] = time.perf_counter() - t0  # printed with the row's JSON
            assert len(frame) == n, (len(frame), n)
    return row


def fmt(v, digits=1) -> str:
    return "—" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--keep", help="write the campaigns here (default: temporary)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    exe = browser()
    root = Path(args.keep or tempfile.mkdtemp(prefix="mutatenn-report-scale-"))
    examples = planned_examples(root / "planner")
    print(f"{len(examples)} real diffs from the planner "
          f"({', '.join(e['operator'] for e in examples)}); Chromium: {exe or 'not found'}")
    rows = []
    try:
        for n in sorted(args.mutants):
            folder = root / f"campaign-{n}"
            shutil.rmtree(folder, ignore_errors=True)
            rows.append(measure(n, examples, folder, exe))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    base = rows[0]
    print("\n| mutants | `mutatenn report` wall s (CPU s) | start-up s | peak RSS MB "
          "| report.html MB | side files (MB) | results.json MB | results.jsonl MB "
          "| first paint s | `#killed=1`: rows shown / matched | CPU s per 1k mutants "
          f"(× the {base['mutants']} figure) | load avg |")
    print("|" + "---|" * 12)
    per_1k = [(r["report_cpu_s"] - r["startup_cpu_s"]) / r["mutants"] * 1000 for r in rows]
    for r, cost in zip(rows, per_1k):
        print(f"| {r['mutants']} | {fmt(r['report_s'])} ({fmt(r['report_cpu_s'])}) "
              f"| {fmt(r['startup_s'])} | {fmt(r['peak_rss_mb'], 0)} | {fmt(r['html_mb'], 2)} "
              f"| {r['side_files']} ({fmt(r['side_mb'])}) | {fmt(r['results_json_mb'])} "
              f"| {fmt(r['results_jsonl_mb'])} | {fmt(r.get('paint_s'), 2)} "
              f"| {r.get('killed_rows_shown', '—')} / {r.get('killed_rows_matched', '—')} "
              f"| {cost:.2f} ({cost / per_1k[0]:.2f}×) | {r['load_before']:.1f} |")
    at10k = next((r for r in rows if r["mutants"] == 10000), None)
    if at10k:
        checks = {k: at10k.get(k) for k in TARGETS_AT_10K}
        print(f"\nat 10k (CPU {at10k['report_cpu_s']:.1f} s): " + ", ".join(
            f"{k} {fmt(v, 2)} (target <= {TARGETS_AT_10K[k]:g}: "
            f"{'ok' if v is not None and v <= TARGETS_AT_10K[k] else 'MISSED'})"
            for k, v in checks.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
