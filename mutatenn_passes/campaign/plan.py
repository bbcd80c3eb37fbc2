"""Planning: turn a campaign into the exact list of builds, deciding what needs no build.

Planning runs in the main process and compiles nothing. Per model it imports the model once;
per operator it lists the sites (graph-level operators in the imported Relax module, kernel-level
ones in the target's S-TIR or lowered TIR, obtained by a Relax lowering, not a build), picks the
sites the configuration asks for, applies each mutation to the IR and hashes the result:

* no site at all -> the mutant is ``not_applicable`` (recorded, never built);
* mutated IR structurally equal to the original's -> ``equivalent`` (never built);
* mutated IR equal to an earlier mutant's on the same target -> a duplicate of that mutant
  (built once, its results shared).

Each remaining mutant becomes one `Task` per target. A task's key hashes everything that
defines its result: model digest and preprocessing, the images, the target profile, operator,
parameters, phase, kernel filter and the exact sites. A configuration change that changes a
mutant's definition therefore makes a new key; unrelated finished results keep theirs.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import random
import time
from dataclasses import asdict, dataclass, field

from .config import CampaignConfig, ModelConfig, OperatorConfig

#: Largest IR diff kept per mutant (characters).
MAX_DIFF = 200_000


@dataclass
class Task:
    """One build-and-run (or a recorded decision not to build) of one mutant on one target."""

    key: str
    kind: str  # "original" or "mutant"
    model: str
    model_index: int
    model_digest: str
    target: str
    target_ref: str
    operator: str = ""
    level: str = ""
    category: str = ""
    phase: str = ""
    kernels: str | None = None
    params: dict = field(default_factory=dict)
    mode: str = ""
    selection: str = ""
    sites: list = field(default_factory=list)  # Site.as_dict() of the rewritten sites
    site_indices: list = field(default_factory=list)
    sites_found: int = 0
    group: str = ""  # the mutant's identity across targets
    ir_hash: str = ""
    planned_status: str | None = None  # "equivalent" / "not_applicable" / None
    duplicate_of: str | None = None
    diff: str = ""
    note: str = ""
    report: dict = field(default_factory=dict)

    @property
    def needs_build(self) -> bool:
        return self.planned_status is None and self.duplicate_of is None

    @property
    def label(self) -> str:
        if self.kind == "original":
            return f"original {self.model}@{self.target}"
        where = ",".join(str(i) for i in self.site_indices[:4])
        if len(self.site_indices) > 4:
            where += f",…(+{len(self.site_indices) - 4})"
        return f"{self.operator}[{where}] {self.model}@{self.target}"

    def definition(self) -> dict:
        """What a worker needs to reproduce this mutant (JSON-safe)."""
        return {"operator": self.operator, "level": self.level, "phase": self.phase or None,
                "kernels": self.kernels, "params": self.params,
                "site_indices": list(self.site_indices)}

    def as_row(self) -> dict:
        return asdict(self)


@dataclass
class Plan:
    tasks: list[Task]
    models: list[dict]
    images: list[dict]
    image_digest: str
    seconds: dict

    def originals(self) -> list[Task]:
        return [t for t in self.tasks if t.kind == "original"]

    def mutants(self) -> list[Task]:
        return [t for t in self.tasks if t.kind == "mutant"]


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def images_digest(images) -> str:
    h = hashlib.sha256()
    for im in images:
        h.update(im.name.encode())
        h.update(str(im.pixels.shape).encode())
        h.update(im.pixels.tobytes())
    return h.hexdigest()[:16]


def load_campaign_model(cfg: ModelConfig):
    from ..model import load_model

    return load_model(cfg.path, **cfg.overrides())


def load_campaign_images(config: CampaignConfig):
    from ..images import default_images, load_images

    return load_images(config.images) if config.images else default_images()


def choose_groups(op: OperatorConfig, n_sites: int, seed: int) -> tuple[list[list[int]], str]:
    """Site index groups, one per mutant, and a note about indices beyond the site list."""
    note = ""
    if op.sites == "all":
        chosen = list(range(n_sites))
    else:
        wanted = list(op.sites)
        chosen = [i for i in wanted if i < n_sites]
        dropped = len(wanted) - len(chosen)
        if dropped:
            note = (f"{dropped} requested site index(es) beyond the {n_sites} site(s) found "
                    "were dropped")
    if op.sample and len(chosen) > op.sample:
        rng = random.Random(op.sample_seed(seed))
        chosen = sorted(rng.sample(chosen, op.sample))
    if not chosen:
        return [], note
    if op.mode == "together":
        return [chosen], note
    return [[i] for i in chosen], note


class _DiffMaker:
    """Unified diffs of the functions a mutation changed (original vs mutated)."""

    def __init__(self):
        self._scripts: dict[tuple, str] = {}

    def _script(self, owner, name, func) -> str:
        key = (owner, name)
        if key not in self._scripts:
            self._scripts[key] = _script_of(func)
        return self._scripts[key]

    def diff(self, owner_key, original, mutated) -> tuple[str, list[str]]:
        import tvm_ffi

        orig = {gv.name_hint: f for gv, f in original.functions_items()}
        new = {gv.name_hint: f for gv, f in mutated.functions_items()}
        changed = []
        chunks = []
        for name in sorted(set(orig) | set(new)):
            a, b = orig.get(name), new.get(name)
            if a is not None and b is not None and tvm_ffi.structural_equal(a, b):
                continue
            changed.append(name)
            before = self._script(owner_key, name, a).splitlines() if a is not None else []
            after = _script_of(b).splitlines() if b is not None else []
            chunks.extend(difflib.unified_diff(before, after, f"original/{name}",
                                               f"mutant/{name}", n=3, lineterm=""))
        text = "\n".join(chunks)
        if len(text) > MAX_DIFF:
            text = text[:MAX_DIFF] + f"\n… (diff truncated at {MAX_DIFF} characters)"
        return text, changed


def _script_of(func) -> str:
    try:
        return func.script(show_meta=False)
    except TypeError:
        return func.script()
    except Exception as exc:  # printing must never stop a campaign
        return f"# cannot print this function: {exc}"


def make_plan(config: CampaignConfig, progress=None) -> Plan:
    """Plan every task of ``config`` (see the module docstring)."""
    import tvm_ffi

    from ..kernel_ir import kernel_module
    from ..mutation import find_sites, mutation
    from ..registry import get_operator
    from ..targets import get_profile

    seconds = {"import": 0.0, "plan": 0.0}
    say = progress or (lambda msg: None)
    start = time.perf_counter()
    images = load_campaign_images(config)
    img_digest = images_digest(images)
    seconds["import"] += time.perf_counter() - start
    profiles = {ref: get_profile(ref) for ref in config.targets}
    tasks: list[Task] = []
    models_info = []
    differ = _DiffMaker()
    # Mutated modules already planned: (target, run inputs, level, phase, hash) ->
    # [(module, key)]. Campaign-wide, so equal IR from two models is built once too.
    seen: dict[tuple, list] = {}
    for m_index, m_cfg in enumerate(config.models):
        say(f"importing model {m_cfg.path or 'embedded default'}")
        t0 = time.perf_counter()
        model = load_campaign_model(m_cfg)
        seconds["import"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        models_info.append({**model.describe(), "index": m_index, "config": m_cfg.as_dict(),
                            "labels_list": model.labels, "notes": list(model.notes)})
        base = {"model_digest": model.digest, "model": model.name,
                "preprocess": model.preprocess.as_dict(), "images": img_digest}
        originals = {}
        for ref, prof in profiles.items():
            key = _hash({**base, "kind": "original", "target": prof.identity()})
            originals[ref] = Task(key=key, kind="original", model=model.name,
                                  model_index=m_index, model_digest=model.digest,
                                  target=prof.name, target_ref=ref,
                                  group=_hash({"model": model.digest, "original": True}))
            tasks.append(originals[ref])
        orig_hash = tvm_ffi.structural_hash(model.mod)
        kernel_mods: dict[tuple, object] = {}
        run_inputs = _hash(base | {"model_digest": None, "model": None})  # preprocess, images

        def add(op: OperatorConfig, ref, sites_all, group, original_mod, mutated, report,
                note, owner):
            prof = profiles[ref]
            phase = (op.phase or get_operator(op.id).default_phase) if op.level == "kernel" \
                else ""
            spec_params = _resolved(op)
            chosen = [sites_all[i] for i in group]
            definition = {"operator": op.id, "params": spec_params, "phase": phase,
                          "kernels": op.kernels,
                          "sites": [(s.index, s.id) for s in chosen]}
            key = _hash({**base, "kind": "mutant", "target": prof.identity(), **definition})
            task = Task(key=key, kind="mutant", model=model.name, model_index=m_index,
                        model_digest=model.digest, target=prof.name, target_ref=ref,
                        operator=op.id, level=op.level, category=op.category, phase=phase,
                        kernels=op.kernels, params=spec_params, mode=op.mode,
                        selection=op.sites_text() + (f" sample={op.sample}" if op.sample
                                                     else ""),
                        sites=[s.as_dict() for s in chosen], site_indices=list(group),
                        sites_found=len(sites_all),
                        group=_hash({"model": model.digest, **definition, "target": None}),
                        note=note, report=report or {})
            if mutated is None:
                task.planned_status = "not_applicable"
                task.note = note or "the operator finds no site in this model" + \
                    (f" for {prof.name}" if op.level == "kernel" else "")
            else:
                h = tvm_ffi.structural_hash(mutated)
                task.ir_hash = f"{h:016x}"
                if h == (orig_hash if op.level == "graph" else
                         tvm_ffi.structural_hash(original_mod)) and \
                        tvm_ffi.structural_equal(mutated, original_mod):
                    task.planned_status = "equivalent"
                    applied = report.get("applied", []) if report else []
                    task.note = "mutated IR is structurally equal to the original's" + \
                        ("" if applied else " (no site could be rewritten)")
                else:
                    bucket = seen.setdefault((ref, run_inputs, op.level, phase, h), [])
                    for other_mod, other_key in bucket:
                        if tvm_ffi.structural_equal(mutated, other_mod):
                            task.duplicate_of = other_key
                            task.note = "mutated IR equals another mutant's: built once"
                            break
                    else:
                        bucket.append((mutated, key))
                    task.diff, _ = differ.diff(owner, original_mod, mutated)
            tasks.append(task)

        for op in config.operators:
            params = _resolved(op)
            if op.level == "graph":
                say(f"planning {op.id}")
                sites = find_sites(op.id, model.mod, **params)
                groups, note = choose_groups(op, len(sites), config.seed)
                if not groups:
                    for ref in profiles:
                        add(op, ref, sites, [], model.mod, None, None, note, ("graph",))
                    continue
                for group in groups:
                    p = mutation(op.id, sites=group, **params)
                    mutated = p(model.mod)
                    report = p.report.as_dict() if p.report else {}
                    for ref in profiles:
                        add(op, ref, sites, group, model.mod, mutated, report, note,
                            ("graph",))
                continue
            phase = op.phase or get_operator(op.id).default_phase
            for ref in profiles:
                if (ref, phase) not in kernel_mods:
                    say(f"lowering {model.name} for {profiles[ref].name} ({phase})")
                    t1 = time.perf_counter()
                    kernel_mods[(ref, phase)] = kernel_module(model, profiles[ref], phase)
                    seconds.setdefault("lower", 0.0)
                    seconds["lower"] += time.perf_counter() - t1
                kmod = kernel_mods[(ref, phase)]
                say(f"planning {op.id} on {profiles[ref].name}")
                sites = find_sites(op.id, kmod, kernels=op.kernels, **params)
                groups, note = choose_groups(op, len(sites), config.seed)
                if not groups:
                    add(op, ref, sites, [], kmod, None, None, note, ("kernel", ref, phase))
                    continue
                for group in groups:
                    p = mutation(op.id, sites=group, kernels=op.kernels, phase=phase,
                                 **params)
                    mutated = p(kmod)
                    report = p.report.as_dict() if p.report else {}
                    add(op, ref, sites, group, kmod, mutated, report, note,
                        ("kernel", ref, phase))
        seconds["plan"] += time.perf_counter() - t0
    images_info = [{"name": im.name, "path": im.path} for im in images]
    return Plan(tasks=tasks, models=models_info, images=images_info, image_digest=img_digest,
                seconds=seconds)


def _resolved(op: OperatorConfig) -> dict:
    from ..registry import get_operator

    return get_operator(op.id).resolve_params(op.params)
