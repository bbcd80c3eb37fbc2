"""Stage 1 of a campaign, its definition: the campaign file and the files it names.

In: a campaign as TOML text, a file, or a dict in the file's schema, with overrides of its
``[campaign]`` keys (command-line flags, `run_campaign` keywords).
Out: a validated `campaign_config.CampaignConfig` (every problem raised at once as one
`ConfigError`, each with its line) and, from `inputs.check_inputs`, the decoded images and
imported models it names (`inputs.CampaignInputs`); the ignore list's matching rules
(`ignore`) and the image labels file's reader (`image_labels`) that the later stages apply.

Must not import `planning`, `running` or `scoring`: a campaign is checked before any work, by
code that knows nothing of how it is run.
"""
