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

import hashlib
import json
import random
import time
from dataclasses import asdict, dataclass, field

from ..config.campaign_config import CampaignConfig, ModelConfig, OperatorConfig
from .definition import MutantDefinition, function_hashes, ir_hash
from .diffs import PendingDiff, compute_diffs


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

    def definition(self) -> MutantDefinition:
        """What a worker needs to reproduce this mutant."""
        return MutantDefinition(operator=self.operator, level=self.level,
                                phase=self.phase or None, kernels=self.kernels,
                                params=dict(self.params),
                                site_indices=tuple(self.site_indices))

    def as_row(self) -> dict:
        return asdict(self)


@dataclass
class Plan:
    tasks: list[Task]
    models: list[dict]
    images: list[dict]
    image_digest: str
    seconds: dict
    skipped: list = field(default_factory=list)  # folder entries that are not images
    #: The mutants to be built whose IR diff is still to be made (`compute_diffs`).
    pending_diffs: list[PendingDiff] = field(default_factory=list, repr=False)

    def originals(self) -> list[Task]:
        return [t for t in self.tasks if t.kind == "original"]

    def mutants(self) -> list[Task]:
        return [t for t in self.tasks if t.kind == "mutant"]

    def compute_diffs(self) -> dict[str, str]:
        """Make the IR diffs planning left for later (each mutant's ``diff``); {key: diff}.
        Planning does not make them: only the reports read them, so a campaign makes them
        while its first builds run (`engine`)."""
        return compute_diffs(self.pending_diffs)


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
    from ...model import load_model

    return load_model(cfg.path, **cfg.overrides())


def load_campaign_images(config: CampaignConfig):
    from ...images import default_images, load_images

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


def make_plan(config: CampaignConfig, progress=None, inputs=None) -> Plan:
    """Plan every task of ``config`` (see the module docstring) on its checked ``inputs``
    (`inputs.check_inputs`; checked here when not given)."""
    from ..config.inputs import check_inputs

    say = progress or (lambda msg: None)
    planner = _Planner(config, say, inputs or check_inputs(config, say))
    for index, model_config in enumerate(config.models):
        planner.plan_model(index, model_config)
    return planner.plan()


@dataclass
class _ModelPlan:
    """One imported model while its tasks are planned."""

    index: int
    model: object
    key_base: dict  # what every task key of this model hashes
    run_inputs: str  # preprocessing and images: what equal IR must share to be built once
    # (target ref, phase) -> kernel module; phase None: after the Relax lowering, bound
    kernels: dict = field(default_factory=dict)


@dataclass
class _Mutant:
    """One group of sites of one operator, mutated in one module (graph or kernels)."""

    op: OperatorConfig
    phase: str
    sites: list  # every site the operator found
    group: list[int]  # the indices of the sites this mutant rewrites
    original: object  # the module the mutation was applied to
    mutated: object | None  # None: the operator found no site
    report: dict
    note: str
    owner: tuple  # which original module it was applied to (model index, level, ...)


class _Planner:
    """Builds the plan model by model; holds what spans models (profiles, timings, the
    mutated modules already planned, the diffs to make)."""

    def __init__(self, config: CampaignConfig, say, inputs):
        from ...targets import get_profile

        self.config, self.say, self.inputs = config, say, inputs
        self.seconds = {"import": inputs.seconds, "plan": 0.0}
        self.images = inputs.images
        self.image_digest = images_digest(self.images)
        self.profiles = {ref: get_profile(ref) for ref in config.targets}
        self.tasks: list[Task] = []
        self.models: list[dict] = []
        self.pending_diffs: list[PendingDiff] = []
        # Each original module's functions with their hashes, by owner (`ir_hash`).
        self.function_hashes: dict[tuple, dict] = {}
        # Mutated modules already planned: (target, run inputs, level, phase, hash) ->
        # [(module, key)]. Campaign-wide, so equal IR from two models is built once too.
        self.seen: dict[tuple, list] = {}

    def plan(self) -> Plan:
        images = [{"name": im.name, "path": im.path, "digest": images_digest([im]),
                   "notes": list(im.notes)} for im in self.images]
        return Plan(tasks=self.tasks, models=self.models, images=images,
                    image_digest=self.image_digest, seconds=self.seconds,
                    skipped=[str(p) for p in self.inputs.skipped],
                    pending_diffs=self.pending_diffs)

    def plan_model(self, index: int, cfg: ModelConfig) -> None:
        model = self.inputs.models[index]
        t0 = time.perf_counter()
        self.models.append({**model.describe(), "index": index, "config": cfg.as_dict(),
                            "labels_list": model.labels, "labels_source": model.labels_source,
                            "classes": model.classes, "notes": list(model.notes)})
        base = {"model_digest": model.digest, "model": model.name,
                "preprocess": model.preprocess.as_dict(), "images": self.image_digest}
        mp = _ModelPlan(index=index, model=model, key_base=base,
                        run_inputs=_hash(base | {"model_digest": None, "model": None}))
        self._originals(mp)
        for op in self.config.operators:
            if op.level == "graph":
                self._graph_operator(mp, op)
            else:
                self._kernel_operator(mp, op)
        self.seconds["plan"] += time.perf_counter() - t0

    def _originals(self, mp: _ModelPlan) -> None:
        model = mp.model
        for ref, prof in self.profiles.items():
            key = _hash({**mp.key_base, "kind": "original", "target": prof.identity()})
            self.tasks.append(Task(key=key, kind="original", model=model.name,
                                   model_index=mp.index, model_digest=model.digest,
                                   target=prof.name, target_ref=ref,
                                   group=_hash({"model": model.digest, "original": True})))

    def _graph_operator(self, mp: _ModelPlan, op: OperatorConfig) -> None:
        """Graph-level sites are in the imported Relax module: mutate once for all targets
        (unchecked: the worker building a mutant checks its rewrite)."""
        from ...graph_operators.base import unchecked_rewrites
        from ...mutation import find_sites

        self.say(f"planning {op.id}")
        with unchecked_rewrites():
            mutants = list(self._mutants(op, "", mp.model.mod,
                                         find_sites(op.id, mp.model.mod, **_resolved(op)),
                                         owner=(mp.index, "graph")))
        for mutant in mutants:
            for ref in self.profiles:
                self._add(mp, ref, mutant)

    def _kernel_operator(self, mp: _ModelPlan, op: OperatorConfig) -> None:
        """Kernel-level sites are in each target's kernels at the operator's phase."""
        from ...mutation import find_sites

        phase = _phase(op)
        for ref in self.profiles:
            kmod = self._kernels(mp, ref, phase)
            self.say(f"planning {op.id} on {self.profiles[ref].name}")
            sites = find_sites(op.id, kmod, kernels=op.kernels, **_resolved(op))
            owner = (mp.index, "kernel", ref, phase)
            for mutant in self._mutants(op, phase, kmod, sites, owner=owner):
                self._add(mp, ref, mutant)

    def _kernels(self, mp: _ModelPlan, ref: str, phase: str):
        """The model's kernels for target ``ref`` at ``phase``: one Relax lowering per target
        serves every phase."""
        import tvm

        from ...kernel_ir import bind_target, kernels_at_phase, lower_relax, tir_part

        profile = self.profiles[ref]
        if (ref, phase) not in mp.kernels:
            t0 = time.perf_counter()
            if (ref, None) not in mp.kernels:
                self.say(f"lowering {mp.model.name} for {profile.name}")
                with tvm.transform.PassContext(opt_level=3):
                    mp.kernels[(ref, None)] = bind_target(
                        tir_part(lower_relax(mp.model.mod, profile)), profile)
            mp.kernels[(ref, phase)] = kernels_at_phase(mp.kernels[(ref, None)], profile, phase)
            self.seconds["lower"] = self.seconds.get("lower", 0.0) + time.perf_counter() - t0
        return mp.kernels[(ref, phase)]

    def _mutants(self, op: OperatorConfig, phase: str, mod, sites: list, owner: tuple):
        """One `_Mutant` per site group the configuration asks for (one without a module
        when there is none)."""
        from ...mutation import mutation

        groups, note = choose_groups(op, len(sites), self.config.seed)
        if not groups:
            yield _Mutant(op, phase, sites, [], mod, None, {}, note, owner)
            return
        kernel_args = {"kernels": op.kernels, "phase": phase} if op.level == "kernel" else {}
        for group in groups:
            p = mutation(op.id, sites=group, **kernel_args, **_resolved(op))
            mutated = p(mod)
            yield _Mutant(op, phase, sites, group, mod, mutated,
                          p.report.as_dict() if p.report else {}, note, owner)

    def _add(self, mp: _ModelPlan, ref: str, m: _Mutant) -> None:
        """The task of mutant ``m`` on target ``ref``, with its planned status."""
        prof, model, op = self.profiles[ref], mp.model, m.op
        params = _resolved(op)
        chosen = [m.sites[i] for i in m.group]
        definition = {"operator": op.id, "params": params, "phase": m.phase,
                      "kernels": op.kernels, "sites": [(s.index, s.id) for s in chosen]}
        key = _hash({**mp.key_base, "kind": "mutant", "target": prof.identity(), **definition})
        task = Task(key=key, kind="mutant", model=model.name, model_index=mp.index,
                    model_digest=model.digest, target=prof.name, target_ref=ref,
                    operator=op.id, level=op.level, category=op.category, phase=m.phase,
                    kernels=op.kernels, params=params, mode=op.mode,
                    selection=op.sites_text() + (f" sample={op.sample}" if op.sample else ""),
                    sites=[s.as_dict() for s in chosen], site_indices=list(m.group),
                    sites_found=len(m.sites),
                    group=_hash({"model": model.digest, **definition, "target": None}),
                    note=m.note, report=m.report)
        if m.mutated is None:
            task.planned_status = "not_applicable"
            task.note = m.note or "the operator finds no site in this model" + \
                (f" for {prof.name}" if op.level == "kernel" else "")
        else:
            self._classify(task, m, (ref, mp.run_inputs, op.level, m.phase))
        self.tasks.append(task)

    def _classify(self, task: Task, m: _Mutant, bucket_key: tuple) -> None:
        """Equivalent to the original, a duplicate of an earlier mutant, or to be built
        (then its IR diff is to be made)."""
        import tvm_ffi

        if m.owner not in self.function_hashes:
            self.function_hashes[m.owner] = function_hashes(m.original)
        task.ir_hash = ir_hash(m.mutated, self.function_hashes[m.owner])
        if tvm_ffi.structural_equal(m.mutated, m.original):
            task.planned_status = "equivalent"
            task.note = "mutated IR is structurally equal to the original's" + \
                ("" if m.report.get("applied") else " (no site could be rewritten)")
            return
        bucket = self.seen.setdefault(bucket_key + (task.ir_hash,), [])
        for other_mod, other_key in bucket:
            if tvm_ffi.structural_equal(m.mutated, other_mod):
                task.duplicate_of = other_key
                task.note = "mutated IR equals another mutant's: built once"
                break
        else:
            bucket.append((m.mutated, task.key))
        self.pending_diffs.append(PendingDiff(task, m.owner, m.original, m.mutated))


def _phase(op: OperatorConfig) -> str:
    from ...registry import get_operator

    return op.phase or get_operator(op.id).default_phase


def _resolved(op: OperatorConfig) -> dict:
    from ...registry import get_operator

    return get_operator(op.id).resolve_params(op.params)
