"""Mutation campaigns: plan, build and run every mutant of a campaign file in isolated
worker processes, store results in SQLite as they arrive (resumable), analyse them against
the original model and write reports."""

from .config import CampaignConfig, load_config, parse_config

__all__ = ["CampaignConfig", "load_config", "parse_config"]
