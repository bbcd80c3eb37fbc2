"""Bound of prefix reuse: the share of the original's work each mutant would not rerun if its
runs started at its first changed kernel call.

    python bench/prefix_share.py [--model resnet50|FILE] [--sample 2] [--target T]

Plans the campaign a user gets with ``--model`` (paper preset, ``--sample`` sites per
operator, like ``bench/campaign.py --model``), finds each mutant's changed kernels as a worker
does (`build.mutant_kernels`) and the first call of one in its ``main``, and weighs the
original's calls before it by their reduction FLOPs (`kernels.flops`). It prints the mean
share per mutant kind: an upper bound of what prefix reuse could save of the runs (it ignores
the cost of keeping activations and building suffix programs), measured without running
anything (docs/campaign.md, *Runs from the first changed cut*).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from campaign import model_file  # the sibling benches (their folder is sys.path[0])
from kernels import flops


def call_sequence(mod) -> list[str]:
    """The kernels ``mod``'s ``main`` calls, in order."""
    import tvm
    from tvm import relax

    seq = []
    for block in mod["main"].body.blocks:
        for binding in block.bindings:
            value = binding.value
            if isinstance(value, relax.Call):
                callee = value.op if isinstance(value.op, tvm.ir.GlobalVar) else \
                    next(iter(value.args), None)  # a direct call, or call_tir's first argument
                if isinstance(callee, tvm.ir.GlobalVar):
                    seq.append(callee.name_hint)
    return seq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--sample", type=int, default=2)
    parser.add_argument("--target", default="llvm-x86-64")
    args = parser.parse_args()

    import tvm

    from mutatenn_passes.build import mutant_kernels, prepare_original
    from mutatenn_passes.campaign.config.campaign_file import parse_config
    from mutatenn_passes.campaign.config.inputs import check_inputs
    from mutatenn_passes.campaign.planning.plan import make_plan

    text = (f'[campaign]\nname = "prefix"\ntargets = ["{args.target}"]\n[[models]]\n'
            f'path = "{model_file(args.model)}"\n[operators]\nuse = ["paper"]\n'
            f"sample = {args.sample}\n")
    config = parse_config(text, base_dir=Path(tempfile.mkdtemp()))
    inputs = check_inputs(config)
    mutants = [t for t in make_plan(config, inputs=inputs).mutants() if t.needs_build]
    original = prepare_original(inputs.models[0], args.target)
    work = {gv.name_hint: flops(f) for gv, f in original.kernels.functions_items()}
    before = [0.0]
    for name in call_sequence(original.relax):
        before.append(before[-1] + work.get(name, 0.0))
    shares: dict[str, list[float]] = {"graph": [], "kernel": []}
    for task in mutants:
        passes = task.definition().build_arguments()
        with tvm.transform.PassContext(opt_level=3):
            m = mutant_kernels(original, list(passes.get("relax_passes", ())),
                               list(passes.get("tir_passes", ())))
        seq = call_sequence(m.relax)
        first = next((i for i, name in enumerate(seq) if name in m.changed), len(seq))
        # the calls before `first` are the original's first calls (a mutation changes none)
        shares[task.level].append(before[min(first, len(before) - 1)] / before[-1])
    print(f"{inputs.models[0].name} on {args.target}: {len(mutants)} builds; share of the "
          "original's FLOPs before the first changed call")
    for kind, values in [*shares.items(), ("all", shares["graph"] + shares["kernel"])]:
        if values:
            print(f"  {kind:6} {len(values):3} mutants: mean {statistics.mean(values):.2f}, "
                  f"median {statistics.median(values):.2f}")


if __name__ == "__main__":
    main()
