"""Tuning's gain on a whole model: rules vs tuned vs ONNX Runtime (LiteRT for TFLite), side by side.

    python bench/tuning.py [--model resnet50] [--target llvm-avx2] [--budget 10m]
                           [--trials 64] [--cache-dir DIR] [--runs 15] [--warmup 3]

Tunes the model's kernels for the target (`mutatenn tune`'s `tune_model`, into a fresh
temporary cache unless ``--cache-dir`` names one to reuse), builds the target's rules
profile and its ``-tuned`` twin, and times both against ONNX Runtime on the same
preprocessed photographs, interleaved in turns with pauses, as ``bench/latency.py`` does
(its helpers: see there why). Prints min / median / max per runtime and the ratios of the
medians and of the minima.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from latency import cpu_line, interleaved, model_path, reference_session, spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50",
                        help="default, squeezenet, resnet50 (default: %(default)s)")
    parser.add_argument("--target", default="llvm-avx2",
                        help="LLVM profile with a -tuned twin (default: %(default)s)")
    parser.add_argument("--budget", default="10m", help="tuning time (default: %(default)s)")
    parser.add_argument("--trials", type=int, default=64,
                        help="sampled schedules per kernel at most (default: %(default)s)")
    parser.add_argument("--cache-dir", default=None,
                        help="tuning cache to fill or reuse (default: a fresh temporary one)")
    parser.add_argument("--runs", type=int, default=15,
                        help="timed calls of each runtime, interleaved (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed turns of each first (default: %(default)s)")
    parser.add_argument("--pause-ms", type=float, default=300.0,
                        help="pause after each turn (default: %(default)s)")
    args = parser.parse_args()
    if args.runs < 9:
        parser.error("--runs must be at least 9 (a median of fewer runs does not hold still)")

    from mutatenn_passes.threads import use_physical_cores

    threads = use_physical_cores()  # before TVM creates its pool
    folder = args.cache_dir or tempfile.mkdtemp(prefix="mutatenn-tuning-")
    os.environ["MUTATENN_TUNING_DIR"] = folder  # what the -tuned profile builds with

    import mutatenn_passes as mn
    from mutatenn_passes.images import preprocess
    from mutatenn_passes.schedule.tuning.store import TuningStore
    from mutatenn_passes.schedule.tuning.tuner import parse_budget, tune_model

    load_before = os.getloadavg()
    print(f"{cpu_line()}; {threads} thread(s) each; load average {load_before[0]:.2f}",
          flush=True)
    model = mn.load_model(model_path(args.model))
    start = time.monotonic()
    reports = tune_model(model, mn.get_profile(args.target), parse_budget(args.budget),
                         trials=args.trials, store=TuningStore(folder))
    tuned_kernels = sum(r.tuned_ms < r.rules_ms for r in reports if not r.error)
    print(f"tuned in {time.monotonic() - start:.0f} s ({folder}): {len(reports)} kernels, "
          f"{sum(r.tried for r in reports)} candidates tried, "
          f"{sum(r.failed for r in reports)} failed, {tuned_kernels} kernel(s) faster "
          f"than the rules; kernels summed {sum(r.rules_ms for r in reports):.1f} ms -> "
          f"{sum(r.tuned_ms for r in reports):.1f} ms", flush=True)
    for r in sorted(reports, key=lambda r: -r.rules_ms)[:8]:
        print(f"  {r.name}: {r.rules_ms:.3f} -> {r.tuned_ms:.3f} ms ({r.speedup:.2f}x, "
              f"{r.tried} tried, {r.failed} failed){' ' + r.error if r.error else ''}")

    rules = mn.build(model, args.target)
    tuned = mn.build(model, f"{args.target}-tuned")
    batch = preprocess(mn.default_images(), model.preprocess)
    calls = {"rules": rules.run_array, "tuned": tuned.run_array}
    ref_name, calls["reference"] = reference_session(model, threads)
    times = interleaved(calls, batch, args.runs, args.warmup, args.pause_ms / 1000)
    load_after = os.getloadavg()
    print(f"\n{args.model} {args.target}, {args.runs} interleaved runs of one image after "
          f"{args.warmup} warm-up turns, ms as min / median / max; load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after")
    for name, label in (("rules", "rules"), ("tuned", "tuned"), ("reference", ref_name)):
        print(f"  {label}: {spread(times[name])}")
    med = {name: statistics.median(t) for name, t in times.items()}
    low = {name: min(t) for name, t in times.items()}
    print(f"  tuned / rules: {med['tuned'] / med['rules']:.2f}x medians "
          f"({low['tuned'] / low['rules']:.2f}x minima)")
    for name in ("rules", "tuned"):
        print(f"  {name} / {ref_name}: {med[name] / med['reference']:.2f}x medians "
              f"({low[name] / low['reference']:.2f}x minima)")


if __name__ == "__main__":
    main()
