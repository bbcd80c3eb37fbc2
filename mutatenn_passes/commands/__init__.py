"""CLI subcommands, one module each (see `mutatenn_passes.cli`)."""
