"""Conv2D: direct convolution with a register tile of outputs, any layout and grouping.

Matches a kernel whose one reduction block reads a 4-D weight and writes a 4-D output:
conv2d in NCHW or NHWC, regular, grouped or depthwise, with its padding before it and its
bias, batch norm, activation or requantization after it. Two strategies, chosen from how
the block indexes its buffers:

* **vector over output channels** when the output channel is the weight's innermost index
  (`PackConvWeights` stores constant weights ``HWIO`` for this) and every other read either
  ignores it or has it innermost too (NHWC depthwise): each input pixel is broadcast and
  multiplied into one or two vectors of output channels, for a few neighbouring output
  pixels at once — ``rt x (vt / lanes)`` accumulators in registers; on a small output
  plane (ResNet50's 14x14 and 7x7 stages) the whole plane of a channel tile is accumulated
  in L1 and the reduction blocked (`plane.plane_tile`), elsewhere each register tile runs
  its whole reduction (`common.register_tile`);
* **vector over output pixels** otherwise (NCHW grouped or depthwise convolutions, whose
  input channel depends on the output channel; weights that are not constants): the
  output's innermost spatial axis is the vector, output channels (or rows) the register
  tile, each input vector shared by the tile's channels.
"""

from __future__ import annotations

from tvm import tirx

from .common import indices, register_tile, uses
from .plane import plane_tile
from .rule import ReductionRule


def _index_var(expr, ivs, candidates):
    """The candidate iter var position ``expr`` is exactly, else None."""
    for i in candidates:
        if isinstance(expr, tirx.Var) and expr.same_as(ivs[i].var):
            return i
    return None


def choose_axes(block, spatial: list[int]) -> tuple[int, int | None, int | None] | None:
    """(vector axis, register axis, output channel axis) among the block's iter vars, or
    None when the block does not look like a convolution."""
    ivs = block.iter_vars
    out_axes = [_index_var(e, ivs, spatial) for e in indices(block.writes[0])]
    if len(out_axes) != 4 or any(a is None for a in out_axes):
        return None

    def wider(axes):  # the innermost of ``axes`` that has more than one iteration
        return next((a for a in reversed(axes) if int(ivs[a].dom.extent) > 1), None)

    channel = None
    for weight in (r for r in block.reads if len(r.region) == 4):
        channel = _index_var(indices(weight)[-1], ivs, out_axes)
        if channel is None:
            continue
        var = ivs[channel].var
        others = [indices(r) for r in block.reads if not r.same_as(weight)]
        if all(not uses(e, var) for idx in others for e in idx[:-1]) and \
                all(_index_var(idx[-1], ivs, [channel]) is not None or not uses(idx[-1], var)
                    for idx in others):
            return channel, wider([a for a in out_axes if a != channel]), channel
        break
    pixel = out_axes[-1]
    register = channel if channel is not None and channel != pixel else \
        wider([a for a in out_axes if a != pixel])
    return pixel, register, channel


def output_row(block, column: int | None) -> int | None:
    """The iter var of the output axis just outside ``column``'s (the rows of the output
    whose columns are ``column``), or None."""
    ivs = block.iter_vars
    out = indices(block.writes[0])
    at = next((d for d, e in enumerate(out) if column is not None and
               e.same_as(ivs[column].var)), None)
    return None if not at else _index_var(out[at - 1], ivs, range(len(ivs)))


#: The innermost reduction loop (input channels, in the weight's storage order) unrolled by
#: this factor: 8 made ResNet50's convolutions 10% faster in all (1-thread kernel timings,
#: AVX2), 22% its 3x3 ones on 7- and 14-wide outputs, whose 7-pixel tiles spill a register.
UNROLL_REDUCTION = 8


class Conv2D(ReductionRule):
    """Register-tiled direct convolution (see the module doc)."""

    def match(self, sch, red):
        spatial, reduce_ = red.axes(sch)
        block = sch.get(red.block)
        if len(block.reads) < 2 or len(reduce_) not in (2, 3):
            return None
        return choose_axes(block, spatial)

    def tile(self, sch, red, plan, unit):
        vector, register, channel = plan
        if vector == channel and plane_tile(sch, red, vector, register,
                                            output_row(sch.get(red.block), register), unit,
                                            UNROLL_REDUCTION):
            return
        register_tile(sch, red, vector, register, unit, channel_axis=channel,
                      unroll_reduction=UNROLL_REDUCTION)
