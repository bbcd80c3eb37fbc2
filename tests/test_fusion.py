"""What the scheduled CPU pipeline fuses: a residual connection's add and the ReLU after it
join the convolution before them (ShuffleNet's `Sum`s, which `SimplifySums` turns into adds,
and which the aliases its identity broadcasts leave must not keep apart)."""

from __future__ import annotations

import re

from mutatenn_passes.kernel_ir import kernel_module


def test_residual_adds_fuse_into_the_convolution_before_them(default_model):
    names = [gv.name_hint for gv in kernel_module(default_model, "llvm-x86-64").get_global_vars()]
    assert not [n for n in names if re.match(r"fused_add\d*_relu", n)], names
    residual = [n for n in names if re.search(r"conv2d.*_add\d+_add\d+_relu", n)]
    assert len(residual) == 3, names  # one per stage of ShuffleNet's units
