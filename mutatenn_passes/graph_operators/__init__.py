"""Graph-level (Relax) mutation operators."""
