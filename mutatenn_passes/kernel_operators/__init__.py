"""Kernel-level (TIR) mutation operators."""
