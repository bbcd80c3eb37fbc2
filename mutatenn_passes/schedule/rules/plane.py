"""Register tiles over a small output plane: the accumulators of a channel tile's whole plane
stay in L1 cache and the reduction over input channels is blocked, as a packed GEMM blocks K.

`common.register_tile` runs the whole reduction for one register tile of outputs before the
next: every tile then reads the channel tile's weights once more. On a 56- or 28-wide output
that slice is small next to the pixels sharing it; on ResNet50's 14x14 and 7x7 stages (256
to 2048 input channels, 3x3 windows) it is 64-300 KB, read from L2 by every register tile,
and those kernels reached 45-75% of the vector units' peak where the 56- and 28-wide ones
reached 75-98% (`bench/kernels.py`, AVX2, 2 threads). Here, per channel tile, the window and a block of
`REDUCTION_BLOCK` input channels run outside the pixels: that block of weights (8 KB) is
read from L1 by every register tile of the plane, whose accumulators (at most `PLANE_BYTES`)
are loaded and stored once per block. A plane whose rows take no register tile that fits
the registers (14 and 7 wide: 7 pixels of two vectors spill on AVX2) is tiled as one axis of
pixels (`fuse_plane`), in tiles that fit and a shorter last one (`pixel_tile`: 196 pixels
as 32 x 6 + 4, 49 as 8 x 6 + 1).
"""

from __future__ import annotations

from tvm import s_tir, tirx

from .common import (ReductionBlock, VectorUnit, accumulate_in_registers, divisor_at_most,
                     indices, inline_epilogue, pixel_tile, tile_sizes, weight_order,
                     weight_read)

#: The accumulators of one channel tile's plane may take this many bytes of the L1 data
#: cache (48 KB here), beside the block of weights (8 KB) and of inputs. 14x14 and 7x7
#: planes of 16 float32 channels fit (12.5 and 3 KB), of 32 (AVX-512) too (25 and 6 KB:
#: 1.2-2.2x faster than with a 16 KB bound, which left them register tiles), 28x28 of 16
#: (50 KB) does not; blocking 28- and 56-wide outputs by rows the same way measured no
#: faster.
PLANE_BYTES = 32 * 1024
#: A channel tile's weights smaller than this stay in L1 for register tiles anyway.
SLICE_BYTES = 16 * 1024
#: Input channels per block of the reduction: 128 x 16 float32 weights = 8 KB per window
#: position (64 and 256 measured within noise of it on ResNet50's 14x14 and 7x7 stages).
REDUCTION_BLOCK = 128
#: Channel tiles are the only parallel loop here: fewer than this many leave cores idle.
MIN_CHANNEL_TILES = 8
#: A plane of fewer pixels gives the block of weights too few register tiles to serve: the
#: quantized MobileNet's 1x1 convolution at 4x4 (16 pixels, 4 tiles of 4) ran 1.4x slower.
MIN_PLANE = 49


def spills(v_tile: int, r_tile: int, unit: VectorUnit) -> bool:
    """Whether a register tile of ``r_tile`` outputs x ``v_tile`` elements has too few
    outputs to keep the FMA units busy (under 4) or more accumulators than the registers
    left beside one per weight vector and one for the broadcast input (`tile_sizes`)."""
    vectors = max(v_tile // unit.lanes, 1)
    return r_tile < 4 or r_tile * vectors + vectors + 1 > unit.registers


def fuse_plane(sch: s_tir.Schedule, red: ReductionBlock, output, row_axis: int,
               column_axis: int) -> bool:
    """Merge the reduction block's ``row_axis`` and ``column_axis`` (adjacent output axes)
    into one axis of rows x columns pixels at ``row_axis`` — in the block, in its accumulator
    buffer and in the epilogue block ``output`` — or return False, changing nothing, when
    their layouts do not allow it. The accumulators are then laid out as one pixel axis, so
    a register tile that crosses a row stays contiguous."""
    block = sch.get(red.block)
    ivs = block.iter_vars
    acc = indices(block.writes[0])
    dims = [next((d for d, e in enumerate(acc) if e.same_as(ivs[a].var)), None)
            for a in (row_axis, column_axis)]
    read = None if output is None else next(
        (r for r in sch.get(output).reads if r.source.same_as(block.writes[0].source)), None)
    if column_axis != row_axis + 1 or None in dims or dims[1] != dims[0] + 1 or read is None:
        return False
    out_ivs = sch.get(output).iter_vars
    at = [next((i for i, iv in enumerate(out_ivs) if indices(read)[d].same_as(iv.var)), None)
          for d in dims]
    if None in at or at[1] != at[0] + 1:
        return False
    columns = int(ivs[column_axis].dom.extent)

    def merged(first: int, ndim: int) -> tirx.IndexMap:
        return tirx.IndexMap.from_func(
            lambda *index: [*index[:first], index[first] * columns + index[first + 1],
                            *index[first + 2:]], ndim=ndim)

    sch.transform_layout(red.block, ("write", 0), merged(dims[0], len(acc)))
    sch.transform_block_layout(red.block, merged(row_axis, len(ivs)))
    sch.transform_block_layout(output, merged(at[0], len(out_ivs)))
    return True


def _pays(block, extent: dict, vector_axis: int, reduce_: list[int], inner: int, v_tile: int,
          plane: int) -> bool:
    """Whether `plane_tile` applies: see its doc."""
    weight = weight_read(block, vector_axis, reduce_)
    slice_bytes = v_tile * weight.source.dtype.bits // 8
    for axis in reduce_:
        slice_bytes *= extent[axis]
    plane_bytes = plane * v_tile * block.writes[0].source.dtype.bits // 8
    return plane_bytes <= PLANE_BYTES and slice_bytes >= SLICE_BYTES and \
        plane >= MIN_PLANE and extent[inner] >= REDUCTION_BLOCK and \
        extent[vector_axis] // v_tile >= MIN_CHANNEL_TILES


def plane_tile(sch: s_tir.Schedule, red: ReductionBlock, vector_axis: int,
               register_axis: int | None, row_axis: int | None, unit: VectorUnit,
               unroll_reduction: int = 1) -> bool:
    """Tile the reduction block as the module doc says, or return False (nothing changed)
    when the plane's accumulators exceed `PLANE_BYTES`, the weights of a channel tile take
    less than `SLICE_BYTES` (register tiles then reread them from L1 anyway), the plane has
    fewer than `MIN_PLANE` pixels, the innermost reduction (in the weights' storage order)
    has fewer than `REDUCTION_BLOCK` iterations to block, or there are fewer than
    `MIN_CHANNEL_TILES` channel tiles to run in parallel.

    ``vector_axis`` is the output channels (the weights' innermost axis), ``register_axis``
    the output's columns and ``row_axis`` its rows. Loops, outermost first: the output's
    other axes and the channel tiles (fused, parallel), the window, the reduction blocks,
    the rows, the register tiles of pixels, the reduction block's input channels (unrolled
    by ``unroll_reduction``), the pixels of the tile (unrolled), the channels (vectorized).
    The epilogue runs per channel tile, after its plane is complete."""
    block = sch.get(red.block)
    if register_axis is None or row_axis is None:
        return False
    spatial, reduce_ = red.axes(sch)
    extent = {i: int(iv.dom.extent) for i, iv in enumerate(block.iter_vars)}
    v_tile, r_tile = tile_sizes(extent[vector_axis], extent[register_axis], unit)
    plane = extent[row_axis] * extent[register_axis]
    inner = weight_order(block, reduce_, vector_axis)[-1]
    if not _pays(block, extent, vector_axis, reduce_, inner, v_tile, plane):
        return False
    accumulate_in_registers(sch, red, vector_axis, register_axis)
    output = inline_epilogue(sch, red.epilogue)
    fused_tile = spills(v_tile, r_tile, unit) and pixel_tile(plane, v_tile, unit)
    if fused_tile and fuse_plane(sch, red, output, row_axis, register_axis):
        vector_axis -= vector_axis > register_axis
        inner -= inner > register_axis
        register_axis, row_axis = row_axis, None
        spatial, reduce_ = red.axes(sch)
        extent = {i: int(iv.dom.extent) for i, iv in enumerate(sch.get(red.block).iter_vars)}
        r_tile = fused_tile
    loops = sch.get_loops(red.block)
    window = [loops[i] for i in weight_order(sch.get(red.block), reduce_, vector_axis)
              if i != inner]
    c_outer, c_inner = sch.split(loops[vector_axis], [None, v_tile])
    p_outer, p_inner = sch.split(loops[register_axis], [None, r_tile])
    k_outer, k_inner = sch.split(loops[inner],
                                 [None, divisor_at_most(extent[inner], REDUCTION_BLOCK)])
    rows = [] if row_axis is None else [loops[row_axis]]
    others = [loops[i] for i in spatial if i not in (vector_axis, register_axis, row_axis)]
    sch.reorder(*others, c_outer, *window, k_outer, *rows, p_outer, k_inner, p_inner, c_inner)
    tiles = sch.fuse(*others, c_outer) if others else c_outer
    if output is not None:
        sch.reverse_compute_at(output, tiles, preserve_unit_loops=True)
        last = sch.get_loops(output)[-1]
        width = divisor_at_most(int(sch.get(last).extent), 2 * unit.lanes)
        if width > 1:
            unit.vectorize(sch, sch.split(last, [None, width])[1])
    sch.parallel(tiles)
    unit.vectorize(sch, c_inner)
    sch.unroll(p_inner)
    sch.decompose_reduction(red.block, (window or [k_outer])[0])
    k_block = int(sch.get(k_inner).extent)
    if 1 < unroll_reduction < k_block and k_block % unroll_reduction == 0:
        sch.unroll(sch.split(k_inner, [None, unroll_reduction])[1])
    if extent[register_axis] % r_tile:  # the last, shorter tile on its own
        sch.loop_partition(p_outer, [extent[register_axis] // r_tile, None])
    return True
