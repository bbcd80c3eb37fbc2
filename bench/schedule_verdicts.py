"""Which kernel mutants change verdict when the kernels are scheduled: the paper's kernel-level
operators on scheduled (`llvm-x86-64`) and unscheduled (`llvm-x86-64-naive`) builds.

    python bench/schedule_verdicts.py [--sample 8] [--images 5] [--output DIR]

Runs one campaign (``mutatenn run``, as a user would) over the embedded default model and,
when ``../shared/fixtures`` is there, the quantized MobileNet fixture, with the paper's
kernel-level operators sampled at ``--sample`` sites each (seeded), on both targets. A
scheduled and an unscheduled kernel are different programs (fused, tiled, vectorized, split
loops), so their sites do not pair one to one; what is compared is each operator's verdicts:
killed / survived (equivalent and not-applicable mutants apart) on each target, and the
operators whose kill rate differs. Prints a Markdown table per model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
TARGETS = ("llvm-x86-64", "llvm-x86-64-naive")


def paper_kernel_operators() -> list[str]:
    import mutatenn_passes as mn

    return [s.id for s in mn.operators() if s.level == "kernel" and s.from_paper]


def campaign_file(folder: Path, sample: int, images: int) -> Path:
    """The campaign TOML: both models, both targets, the paper's kernel operators."""
    lines = ["[campaign]", 'name = "schedule-verdicts"', f'output = "{folder / "out"}"',
             "seed = 0", "workers = 2", "timeout = 600",
             "targets = [" + ", ".join(f'"{t}"' for t in TARGETS) + "]", "",
             "[[models]]  # no path: the embedded default", ""]
    fixture = FIXTURE / "mobilenet_v1_0.25_128_quant.tflite"
    if fixture.is_file():
        lines += ["[[models]]", f'path = "{fixture}"', 'name = "mobilenet-quant"', ""]
    photos = folder / "images"
    photos.mkdir()
    import mutatenn_passes as mn
    from PIL import Image

    default = mn.default_images()
    for i in range(images):
        Image.fromarray(default[i % len(default)].pixels).save(photos / f"{i:02d}.png")
    lines += ["[images]", f'paths = ["{photos}"]', "",
              "[operators]", "use = [" + ", ".join(f'"{o}"' for o in
                                                   paper_kernel_operators()) + "]",
              f"sample = {sample}", ""]
    path = folder / "campaign.toml"
    path.write_text("\n".join(lines))
    return path


def verdicts(results: dict) -> dict:
    """{model: {operator: {target: [killed, survived]}}} over mutants that ran."""
    table: dict = {}
    for m in results["mutants"]:
        if m["status"] != "ok":
            continue
        cell = table.setdefault(m["model"], {}).setdefault(m["operator"], {}) \
            .setdefault(m["target"], [0, 0])
        cell[0 if m["killed"] else 1] += 1
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=8,
                        help="sites per operator and target (default: %(default)s)")
    parser.add_argument("--images", type=int, default=5,
                        help="images (the default photographs in turn; default: %(default)s)")
    parser.add_argument("--output", help="keep the campaign in this folder")
    args = parser.parse_args()
    folder = Path(args.output or tempfile.mkdtemp(prefix="mutatenn-verdicts-")).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    campaign = campaign_file(folder, args.sample, args.images)
    print(f"== {campaign}", flush=True)
    subprocess.run([sys.executable, "-m", "mutatenn_passes.cli", "run", str(campaign)],
                   check=True)
    results = json.loads((folder / "out" / "results.json").read_text())
    for model, ops in verdicts(results).items():
        print(f"\n### {model}\n")
        print("| operator | scheduled killed/ran | unscheduled killed/ran | changed |")
        print("|---|---|---|---|")
        changed = 0
        for op in paper_kernel_operators():
            cells = ops.get(op, {})
            rates = []
            texts = []
            for target in TARGETS:
                killed, survived = cells.get(target, [0, 0])
                ran = killed + survived
                texts.append(f"{killed}/{ran}" if ran else "-")
                rates.append(killed / ran if ran else None)
            differs = None not in rates and rates[0] != rates[1]
            changed += differs
            print(f"| {op} | {texts[0]} | {texts[1]} | {'yes' if differs else ''} |")
        print(f"\n{changed} operator(s) with a different kill rate on {model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
