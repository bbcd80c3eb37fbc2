"""Schedules for CPU kernels: what turns TVM's naive CPU loops into the tiled, vectorized,
parallel kernels a deployment ships (see `pipeline`), so that campaigns run at deployed speed
and kernel-level mutants mutate the code that actually runs."""

from .pipeline import scheduled_cpu_pipeline
from .rules import default_rules

__all__ = ["default_rules", "scheduled_cpu_pipeline"]
