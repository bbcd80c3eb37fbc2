"""Stage 3 of a campaign, its execution: build and run every planned task in isolation.

In: a `config.campaign_config.CampaignConfig`, its checked inputs and the plan's tasks
(`planning.plan.Task`).
Out: one `messages.TaskResult` per task, stored as it arrives in the campaign's database
(`scoring.store.Store`), the originals checked against each model's reference runtime, and
at the end the reports (`scoring.report.write_reports`).

Here: the engine (`engine.execute_campaign`), the executors (`local_executor`: worker processes
on this machine, forked from the `zygote`; `ray_executor`, `ray_worker`, `ray_cluster`,
`shipping`: a Ray cluster), the worker and what it keeps between tasks (`worker`, `worker_cache`, `output_rows`), the sandbox
a mutant's code runs in (`sandbox`, `runners`, `processes`, `faults`), the typed messages
between the engine and its workers (`messages`, `pool`), and progress on the terminal.

May import `config`, `planning` and `scoring` (the engine writes the store and the reports);
no stage imports it. Above the stages, `campaign.api` and `campaign.commands` start the engine
and show progress, and `mutatenn cluster` lists a Ray cluster's nodes (`ray_cluster`).
"""
