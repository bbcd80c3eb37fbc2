"""Per-kernel profile of a scheduled model: which kernels cost most, and how far each is from
the machine's peak.

    python bench/kernels.py [--model resnet50] [--target llvm-avx2] [--threads N]
                            [--repeats 9] [--top 25] [--ghz 2.6]

Each distinct fused kernel (as the scheduled pipeline hands it to the rules) is scheduled by
the default rules, built alone and timed with TVM's ``time_evaluator`` (median of
``--repeats`` repeats of at least 50 ms); the table weights it by how often the model's
``main`` calls it. Its FLOPs are twice the iteration count of its reduction block (one
multiply-add per iteration), so the last column says which fraction of the vector units'
peak (two FMA units of ``lanes`` float32 each per core and cycle, at ``--ghz``) it reaches:
the kernels with the most milliseconds and the lowest fraction are the levers.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import statistics

from latency import cpu_line, model_path  # the sibling bench (its folder is sys.path[0])


def call_counts(mod) -> dict[str, int]:
    """{kernel name: calls in the Relax functions of ``mod``}."""
    import tvm
    from tvm import relax

    counts: dict[str, int] = {}

    def visit(expr):
        if not isinstance(expr, relax.Call):
            return
        callee = expr.op if isinstance(expr.op, tvm.ir.GlobalVar) else \
            next(iter(expr.args), None)  # a direct call, or call_tir's first argument
        if isinstance(callee, tvm.ir.GlobalVar):
            counts[callee.name_hint] = counts.get(callee.name_hint, 0) + 1

    for _gv, func in mod.functions_items():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func, visit)
    return counts


def flops(func) -> float:
    """Twice the iterations of the kernel's reduction blocks (0 for a kernel without)."""
    import tvm_ffi
    from tvm import s_tir, tirx

    total = 0.0

    def visit(block):
        ivs = block.iter_vars
        if any(iv.iter_type == tirx.IterVar.CommReduce for iv in ivs):
            n = 1.0
            for iv in ivs:
                n *= int(iv.dom.extent)
            nonlocal total
            total += 2.0 * n

    tvm_ffi.structural_walk(func.body, (s_tir.SBlock, visit))
    return total


def kernel_ms(func, target, repeats: int) -> float:
    import numpy as np
    import tvm
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo

    library = tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}),
                          target=target).jit()
    rng = np.random.default_rng(0)
    args = [tvm.runtime.tensor(rng.standard_normal([int(s) for s in a.shape]).astype(
        str(a.dtype))) for a in ArgInfo.from_prim_func(func)]
    timer = library.time_evaluator("main", tvm.cpu(), number=1, repeat=repeats,
                                   min_repeat_ms=50)
    return statistics.median(timer(*args).results) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--target", default="llvm-avx2")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--ghz", type=float, default=2.6)
    parser.add_argument("--kernels", default="*", help="fnmatch pattern of kernel names")
    args = parser.parse_args()

    from mutatenn_passes.threads import physical_cores

    threads = args.threads or physical_cores()
    os.environ["TVM_NUM_THREADS"] = str(threads)
    import tvm

    import mutatenn_passes as mn
    from mutatenn_passes.kernel_ir import tir_part
    from mutatenn_passes.schedule import scheduled_cpu_pipeline
    from mutatenn_passes.schedule.rules import default_rules
    from mutatenn_passes.schedule.rules.common import VectorUnit
    from tvm.s_tir import dlight as dl

    model = mn.load_model(model_path(args.model))
    target = mn.get_profile(args.target).tvm_target()
    with tvm.transform.PassContext(opt_level=3):
        mod = scheduled_cpu_pipeline(target, rules=[])(model.mod)
    counts = call_counts(mod)
    unit = VectorUnit.of(target)
    peak = 2 * 2 * unit.lanes * args.ghz * 1e9 * threads
    load = os.getloadavg()
    print(f"{cpu_line()}; {threads} thread(s); {args.target}; peak {peak / 1e9:.0f} GFLOP/s "
          f"at {args.ghz} GHz; load average {load[0]:.2f}", flush=True)
    rows = []
    for gv, func in tir_part(mod).functions_items():
        name = gv.name_hint
        if not fnmatch.fnmatchcase(name, args.kernels):
            continue
        with target:
            scheduled = dl.ApplyDefaultSchedule(*default_rules())(
                tvm.IRModule({"main": func}))["main"]
        ms = kernel_ms(scheduled, target, args.repeats)
        rows.append((name, counts.get(name, 0), ms, flops(func)))
    rows.sort(key=lambda r: -r[1] * r[2])
    total = sum(c * ms for _, c, ms, _ in rows)
    print(f"\n{'kernel':60s} calls   ms/call  ms total  GFLOP/s  % peak")
    for name, c, ms, f in rows[:args.top]:
        gflops = f / ms / 1e6 if ms else 0.0
        print(f"{name[:60]:60s} {c:5d} {ms:9.3f} {c * ms:9.2f} {gflops:8.1f} "
              f"{100 * gflops * 1e9 / peak:6.1f}")
    all_flops = sum(c * f for _, c, _, f in rows)
    print(f"\nall {len(rows)} kernels: {total:.2f} ms summed over calls, "
          f"{all_flops / 1e9:.2f} GFLOP, {all_flops / total / 1e6:.1f} GFLOP/s; "
          f"load average {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
