"""Stage 2 of a campaign, its plan: the exact list of builds, and what needs no build.

In: a validated `config.campaign_config.CampaignConfig` and its checked inputs
(`config.inputs.CampaignInputs`: the imported models and decoded images).
Out: a `plan.Plan`: one `plan.Task` per original and per mutant and target, each mutant
described as plain, picklable data (`definition.MutantDefinition`: operator, phase, kernel
filter, parameters, sites) with the hash of the IR it makes; mutants with no site
(``not_applicable``), equal to the original (``equivalent``) or to an earlier mutant (a
duplicate) are decided here and never built.

Planning compiles nothing. Must not import `running` or `scoring`: a plan is made before any
worker exists and says nothing of results.
"""
