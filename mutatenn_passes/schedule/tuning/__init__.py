"""Opt-in tuning of CPU kernels (`mutatenn tune`, profiles with ``schedule = "tuned"``).

MetaSchedule's own tuner (``tune_relax``, ``tune_tir``) segfaults in TVM 0.27's wheel before
its first trial, but its design space works in-process. The tuner here samples schedules from
that space itself (`space`), measures each candidate in a child process so that a crash or a
hang costs one candidate, not the run (`measure`), spends a time budget on the heaviest
kernels first (`tuner`), and keeps the best schedule of each kernel in a folder of JSON
records (`store`) from which tuned builds take their kernels (`apply`).

The package imports nothing at its top level: the Relax pipeline imports `apply` on every
scheduled build, and must not pay for (or cycle through) the tuner.
"""
