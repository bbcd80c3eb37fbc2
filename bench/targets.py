"""Build time and per-image latency of a model on every CPU target that runs here.

    python bench/targets.py [--model PATH] [--repeat N]

Builds once per target (timed, including the C target's compile-and-load by the system
compiler), then times ``--repeat`` passes over the default images and prints the median
per-image latency, side by side with the ratio to llvm-x86-64 measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import mutatenn_passes as mn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file (default: the embedded default)")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the images (3)")
    args = parser.parse_args()

    start = time.perf_counter()
    model = mn.load_model(args.model)
    print(f"model {model.name}: imported in {time.perf_counter() - start:.1f} s")
    images = mn.default_images()
    rows = []
    for profile in mn.list_profiles():
        ok, why = profile.can_run()
        if profile.device != "cpu" or not ok:
            print(f"{profile.name:<12} skipped: {why or 'not a CPU target'}")
            continue
        start = time.perf_counter()
        artifact = mn.build(model, profile)
        artifact.run(images[:1])  # first run loads the library (C: compiles it)
        build_s = time.perf_counter() - start
        latencies = []
        for _ in range(args.repeat):
            latencies += [p.latency_ms for p in artifact.run(images).images]
        rows.append((profile.name, build_s, statistics.median(latencies)))
    base = dict((name, lat) for name, _, lat in rows).get("llvm-x86-64")
    print(f"\n{'target':<12} {'build s':>8} {'median ms/image':>16} {'vs x86-64':>10}")
    for name, build_s, latency in rows:
        ratio = f"{latency / base:.2f}x" if base else "-"
        print(f"{name:<12} {build_s:>8.1f} {latency:>16.1f} {ratio:>10}")


if __name__ == "__main__":
    main()
