"""Stage 4 of a campaign, its results: what the campaign database holds, and what it means.

In: the campaign's output folder: its SQLite database (`store.Store`, written by `running`
as results arrive) and the run history kept in it.
Out: the analysis of every mutant against its original (`analysis.analyse`: kill decisions,
metrics, the mutation score), the reports written from that one analysis (results.json, CSV,
HTML from `templates/`, JUnit), the CI gate on the score (`gate`), and `CampaignResult`, the
Python view of all of it.

May import `config` (ignore lists, image labels) and nothing of `planning` or `running`: a
report is rebuilt from the output folder alone, with no worker and no plan.
"""
