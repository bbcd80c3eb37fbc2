"""Mutation campaigns: plan, build and run every mutant of a campaign file in isolated
worker processes, store results in SQLite as they arrive (resumable), analyse them against
the original model and write reports. `run_campaign` and `open_campaign` are the Python API."""

from .api import open_campaign, run_campaign
from .scoring.campaign_result import CampaignResult
from .config.campaign_config import CampaignConfig
from .config.campaign_file import config_from_dict, load_config, parse_config

__all__ = ["CampaignConfig", "CampaignResult", "config_from_dict", "load_config",
           "open_campaign", "parse_config", "run_campaign"]
