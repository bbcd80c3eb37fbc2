"""What the CPU schedule rules share: reading a kernel's blocks, and the loop transformations
that several kernel patterns use (inlining an epilogue, register tiling, parallel + vector).

Kept apart from the rules, as dlight keeps its analysis apart from its rules, so each rule
file reads as the strategy for one kernel pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm import s_tir, tirx
from tvm.s_tir.dlight.analysis import collect_vars_used_in_prim_expr
from tvm.target import Target
from tvm.target.codegen import target_has_features

SPATIAL = tirx.IterVar.DataPar
REDUCE = tirx.IterVar.CommReduce

@dataclass(frozen=True)
class VectorUnit:
    """What the rules need to know of the target's SIMD unit for one element type."""

    lanes: int  #: elements per vector register
    registers: int  #: vector registers (accumulators must leave two for the operands)
    #: Whether TVM emits vector code for the target. TVM's C backend prints no vector types,
    #: so there the loops meant as vectors stay plain innermost loops, for the C compiler to
    #: vectorize.
    explicit: bool
    #: Whether it multiplies and adds in one instruction (FMA3). Register tiles with a last,
    #: shorter tile (`pixel_tile`) measured faster only with it: on SSE2 a strided 1x1
    #: convolution ran 1.3x slower with them.
    fma: bool

    @classmethod
    def of(cls, target: Target, dtype_bits: int = 32) -> "VectorUnit":
        if target_has_features("avx512f", target):
            bits, registers = 512, 32
        elif target_has_features("avx", target):
            bits, registers = 256, 16
        else:
            bits, registers = 128, 16  # SSE2, the x86-64 baseline (and the C backend's host)
        return cls(max(bits // dtype_bits, 1), registers, target.kind.name == "llvm",
                   target_has_features("fma", target))

    def vectorize(self, sch: s_tir.Schedule, loop) -> None:
        if self.explicit:
            sch.vectorize(loop)


def divisor_at_most(extent: int, cap: int) -> int:
    """The largest divisor of ``extent`` not above ``cap`` (tiles that divide their loop leave
    no remainder loop, so the code stays branch-free)."""
    for d in range(min(cap, extent), 0, -1):
        if extent % d == 0:
            return d
    return 1


def root_blocks(sch: s_tir.Schedule) -> list:
    """The blocks directly under the root, in program order."""
    return list(sch.get_child_blocks(sch.get_sblock("root")))


def is_reduction(sch: s_tir.Schedule, block) -> bool:
    return any(iv.iter_type == REDUCE for iv in sch.get(block).iter_vars)


def is_spatial(sch: s_tir.Schedule, block) -> bool:
    return all(iv.iter_type == SPATIAL for iv in sch.get(block).iter_vars)


def uses(expr, var) -> bool:
    return any(v.same_as(var) for v in collect_vars_used_in_prim_expr(expr))


def indices(region) -> list:
    return [r.min for r in region.region]


@dataclass
class ReductionBlock:
    """A kernel's one reduction block with the injective blocks before and after it."""

    block: object
    prologue: list
    epilogue: list

    @classmethod
    def split(cls, sch: s_tir.Schedule, blocks: list) -> "ReductionBlock | None":
        """The kernel's top-level ``blocks`` split around its only reduction block, or None
        when it has none or several, or a block of another kind (opaque, nested)."""
        reductions = [b for b in blocks if is_reduction(sch, b)]
        if len(reductions) != 1 or any(not is_spatial(sch, b) for b in blocks
                                       if b not in reductions):
            return None
        at = blocks.index(reductions[0])
        return cls(reductions[0], blocks[:at], blocks[at + 1:])

    def axes(self, sch) -> tuple[list[int], list[int]]:
        """Positions of the spatial and the reduction iter vars of the reduction block."""
        ivs = sch.get(self.block).iter_vars
        return ([i for i, iv in enumerate(ivs) if iv.iter_type == SPATIAL],
                [i for i, iv in enumerate(ivs) if iv.iter_type == REDUCE])


def inline_epilogue(sch: s_tir.Schedule, epilogue: list):
    """Inline every epilogue block but the last into its consumers; return the last (the
    kernel's output) or None. Inlining keeps bias, batch norm and activation in the
    registers of the tile that produced them instead of in buffers of the whole output."""
    if not epilogue:
        return None
    for block in epilogue[:-1]:
        sch.compute_inline(block)
    return epilogue[-1]


def parallel_vectorize(sch: s_tir.Schedule, block, unit: VectorUnit) -> None:
    """Schedule an injective block: its outer loops fused and run in parallel, its innermost
    loop vectorized when the vector divides it (a remainder would need a scalar tail)."""
    loops = sch.get_loops(block)
    extents = [int(sch.get(l).extent) for l in loops]
    if len(loops) > 1:
        inner = loops[-1]
        width = divisor_at_most(extents[-1], 2 * unit.lanes)
        if width >= 4 or width == extents[-1] > 1:
            if width < extents[-1]:
                _, inner = sch.split(inner, [None, width])
            unit.vectorize(sch, inner)
        sch.parallel(sch.fuse(*loops[:-1]) if len(loops) > 2 else loops[0])
    elif loops:
        outer, inner = sch.split(loops[0], [None, divisor_at_most(extents[0], 2 * unit.lanes)])
        unit.vectorize(sch, inner)
        sch.parallel(outer)


def partial_vector(v_extent: int, unit: VectorUnit, tile: int) -> int:
    """The vector tile of an axis no whole vector divides, given the largest divisor ``tile``
    below the lanes: the largest power-of-two divisor instead (a register width the ISA has:
    8 float32 are the 256-bit half of an AVX-512 vector) where that drops at most a quarter
    of ``tile``'s lanes. SqueezeNet's 1000 classes took a tile of 10 on AVX-512, a vector
    type no register has, which LLVM has to legalize in parts or widened: its classifier
    convolution ran 1.1x faster with 8 (19% of peak before, slower than AVX2's 8; the
    assembly was not compared). Dropping more measured
    slower: ShuffleNet's 28-pixel vectors (14 on AVX-512, 7 on AVX2) as 4 ran up to 2x
    slower, its 24 channels (12) as 8 1.1x slower."""
    power = min(v_extent & -v_extent, unit.lanes)
    return power if 4 * power >= 3 * tile else tile


def tile_sizes(v_extent: int, r_extent: int | None, unit: VectorUnit) -> tuple[int, int]:
    """(vector tile, register tile), each dividing its axis.

    The vector tile is two vectors where the axis allows (one otherwise): one vector per
    pixel measured 2-10x slower on ResNet50's 1x1 convolutions with AVX2, and four (a 64-byte
    line with SSE2) left room for too few pixels. The register tile then takes as many pixels
    as the accumulators allow: every vector register but those holding the tile's weights
    (one per vector) and the broadcast input pixel, i.e. 6 pixels of two vectors with 16
    registers (12 accumulators, the shape of the usual AVX2 micro-kernel). Seven pixels of
    two vectors need 17 registers: LLVM then spills an accumulator and rotates all the others
    through the spare register on every iteration; 4 pixels instead of 7 made ResNet50's 1x1
    convolutions at 56x56 and 28x28 1.2-4.5x faster (and its 3x3 at 56x56 1.7x). When no divisor
    of the axis from 4 up fits that budget (7- and 14-wide outputs), the tile takes 7 pixels
    anyway: fewer leave the FMA units waiting on too few independent accumulators, and
    2 x 2 pixels of a 14 x 14 output measured no faster overall (faster on some 1x1
    convolutions, 1.3x slower on the 3x3 ones). Where even that leaves fewer than 4 pixels
    (13- and 27-wide outputs have no divisor from 4 to 7), the tile takes one vector and up
    to all registers but three in pixels, if that is more than twice as many: SqueezeNet's
    convolutions at 13 x 13 (13 pixels instead of 1) ran 2-3.6x faster, at 27 x 27 (9
    instead of 3) 1.2x (AVX2, 1 thread); with 7 pixels to gain instead, one vector measured
    2.3x slower on ResNet50's 3x3 convolutions, so 7-wide outputs keep two vectors."""
    v_tile = divisor_at_most(v_extent, 2 * unit.lanes)
    if v_tile % unit.lanes and v_extent >= unit.lanes:
        v_tile = divisor_at_most(v_extent, unit.lanes)
        if v_tile % unit.lanes:
            v_tile = partial_vector(v_extent, unit, v_tile)
    vectors = max(v_tile // unit.lanes, 1)
    if r_extent is None:
        return v_tile, 1
    r_tile = divisor_at_most(r_extent, max((unit.registers - vectors - 1) // vectors, 1))
    if r_tile < 4:
        r_tile = divisor_at_most(r_extent, max((unit.registers - 2) // vectors, 1))
    if r_tile < 4 and vectors > 1:
        one = divisor_at_most(r_extent, unit.registers - 3)
        if one > 2 * r_tile:
            return unit.lanes, one
    return v_tile, r_tile


def pixel_tile(pixels: int, v_tile: int, unit: VectorUnit) -> int | None:
    """The register tile of an axis of ``pixels`` (a row, or a plane fused into one axis):
    the most pixels, from 4 up, that fit the registers beside ``v_tile``'s weights and the
    broadcast input (as `tile_sizes` counts them) and divide the axis or, with FMA, leave a
    shorter last tile after 4 whole ones or more; None if none does. On AVX2 (two vectors: 6
    pixels fit) rows of 56, 28 and 112 pixels take tiles of 6 and a last of 2 or 4 instead
    of tiles of 4 (ResNet50's 56-wide convolutions 1.03-1.28x faster, its 28-wide ones
    1.00-1.11x, its first 1.21x; SqueezeNet's first, 111 wide, 1.25x instead of tiles of 3),
    a 14x14 plane 32 tiles of 6 and one of 4 instead of 49 of 4 (1.04-1.23x), a 7x7 plane 8
    of 6 and one of 1 instead of rows of 7, which spill (1.14-1.25x); kernel A/B, 2 threads.

    The last tile is split off by ``loop_partition``: the split's bound check is then true in
    the first part and, unrolled, a constant in the last, so no check stays in the code."""
    vectors = max(v_tile // unit.lanes, 1)
    fit = (unit.registers - vectors - 1) // vectors
    return next((t for t in range(fit, 3, -1) if pixels % t == 0 or
                 unit.fma and pixels // t >= 4), None)


def accumulate_in_registers(sch: s_tir.Schedule, red: ReductionBlock, vector_axis: int,
                            register_axis: int | None) -> None:
    """Give the reduction's accumulator buffer the tile's layout: vector axis innermost,
    register axis next to it.

    The accumulators are a buffer the size of the tile once TVM compacts it; LLVM keeps it in
    vector registers only if each vector of it is contiguous. A conv2d that vectorizes output
    channels of an NCHW output would otherwise accumulate into a channel-strided buffer, which
    LLVM gathers and scatters element by element around every multiply-add. An output that is
    also the kernel's result gets an intermediate accumulator first (``cache_write``).
    """
    block = sch.get(red.block)
    ivs = block.iter_vars
    out = indices(block.writes[0])
    dims = [None if a is None else next((d for d, e in enumerate(out) if e.same_as(ivs[a].var)),
                                        None) for a in (register_axis, vector_axis)]
    if dims[1] is None:
        return
    order = [d for d in range(len(block.writes[0].region)) if d not in dims] + \
        [d for d in dims if d is not None]
    if order == sorted(order):
        return
    if not red.epilogue:
        red.epilogue.append(sch.cache_write(red.block, 0, "global"))
    sch.transform_layout(red.block, ("write", 0), lambda *index: [index[d] for d in order])


def weight_read(block, vector_axis: int, reduce_: list[int]):
    """The block's read of the weights: the one whose innermost index is (or, for weights
    blocked by `PackConvWeights`, derives from) the vector axis and which a reduction axis
    indexes too (the accumulator has the vector axis innermost as well); None if none."""
    ivs = block.iter_vars
    return next((r for r in block.reads if indices(r)
                 and uses(indices(r)[-1], ivs[vector_axis].var)
                 and any(uses(e, ivs[a].var) for e in indices(r) for a in reduce_)), None)


def weight_order(block, reduce_: list[int], vector_axis: int) -> list[int]:
    """The reduction axes in the order the weights are stored (`weight_read`), so
    consecutive iterations read neighbouring rows of the weight: for an ``HWIO`` conv weight,
    kernel row and column outside, input channels inside."""
    ivs = block.iter_vars
    weight = weight_read(block, vector_axis, reduce_)
    if weight is None:
        return reduce_
    index = indices(weight)

    def position(axis):
        return next((d for d, e in enumerate(index) if uses(e, ivs[axis].var)), len(index))

    return sorted(reduce_, key=position)


def register_tile(sch: s_tir.Schedule, red: ReductionBlock, vector_axis: int,
                  register_axis: int | None, unit: VectorUnit, channel_axis: int | None = None,
                  unroll_reduction: int = 1):
    """Tile the reduction block so that a block of outputs stays in vector registers.

    The ``vector_axis`` tile (one or two vectors) is vectorized, the ``register_axis`` tile
    is unrolled, and the reduction loops run inside them: every output of the tile is
    accumulated in a register and written once. The tiles of ``channel_axis`` (the output
    channels, whose weights are the largest operand) are the outermost loop, so each slice of
    weights is read once from memory and reused from cache by every pixel; the tile loops are
    fused and run in parallel. The epilogue is computed per tile, vectorized on
    its innermost (contiguous) axis, and the accumulators' initialisation is split from the
    update (``decompose_reduction``). ``unroll_reduction`` > 1 unrolls the innermost reduction
    loop by that factor where it divides the loop.
    """
    spatial, reduce_ = red.axes(sch)
    accumulate_in_registers(sch, red, vector_axis, register_axis)
    loops = sch.get_loops(red.block)
    ivs = sch.get(red.block).iter_vars
    extent = {i: int(ivs[i].dom.extent) for i in spatial}
    v_tile, r_tile = tile_sizes(extent[vector_axis],
                                None if register_axis is None else extent[register_axis], unit)
    # the register axis's tiles innermost of the tile loops (the channels' go first), so a
    # last, shorter tile can be split off them
    if register_axis is not None and v_tile > unit.lanes and \
            [i for i in spatial if i != channel_axis][-1] == register_axis:
        wider = pixel_tile(extent[register_axis], v_tile, unit)
        if wider is not None and r_tile < wider < extent[register_axis]:
            r_tile = wider
    v_outer, v_inner = sch.split(loops[vector_axis], [None, v_tile])
    tile_of = {vector_axis: v_outer}
    inner = [v_inner]
    if register_axis is not None:
        r_outer, r_inner = sch.split(loops[register_axis], [None, r_tile])
        tile_of[register_axis] = r_outer
        inner = [r_inner, v_inner]
    tiles = [tile_of.get(i, loops[i]) for i in spatial]
    if channel_axis is not None:
        first = tile_of.get(channel_axis, loops[channel_axis])
        tiles.remove(first)
        tiles.insert(0, first)
    # a last, shorter register tile: the tiles of the register axis run serially in each
    # parallel iteration, the last split off (`pixel_tile`)
    partial = register_axis is not None and extent[register_axis] % r_tile != 0
    parallel = tiles[:-1] if partial else tiles
    reductions = [loops[i] for i in weight_order(sch.get(red.block), reduce_, vector_axis)]
    sch.reorder(*tiles, *reductions, *inner)
    output = inline_epilogue(sch, red.epilogue)
    if output is not None:
        sch.reverse_compute_at(output, parallel[-1], preserve_unit_loops=True)
    sch.parallel(sch.fuse(*parallel) if len(parallel) > 1 else parallel[0])
    if v_tile > 1:
        unit.vectorize(sch, v_inner)
    if register_axis is not None:
        sch.unroll(r_inner)
    if output is not None:
        last = sch.get_loops(output)[-1]
        if partial:  # a row of tiles: vectors of it
            last = sch.split(last, [None, divisor_at_most(int(sch.get(last).extent),
                                                          2 * unit.lanes)])[1]
        if int(sch.get(last).extent) > 1:
            unit.vectorize(sch, last)
    if not partial:
        sch.decompose_reduction(red.block, reductions[0])
    if unroll_reduction > 1:
        innermost = sch.get_loops(red.block)[-len(inner) - 1]
        k_extent = int(sch.get(innermost).extent)
        if k_extent > unroll_reduction and k_extent % unroll_reduction == 0:
            sch.unroll(sch.split(innermost, [None, unroll_reduction])[1])
    if partial:  # each part's accumulators initialised in it, below its tile loop
        for part in sch.loop_partition(tiles[-1], [extent[register_axis] // r_tile, None]):
            block = sch.get_child_blocks(part)[0]
            sch.decompose_reduction(block, sch.get_loops(block)[1])
