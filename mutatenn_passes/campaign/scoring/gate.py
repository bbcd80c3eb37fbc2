"""The CI gate: is a campaign's mutation score below its threshold (``fail_under``)?

`mutatenn run --fail-under SCORE` (or ``[campaign] fail_under``) exits with
`EXIT_BELOW_THRESHOLD` after writing every report when `threshold_failure` says why; the
reports and `api.CampaignResult` show the same verdict. A campaign with no mutant assessed has
no score, which fails a threshold rather than passing it silently.
"""

from __future__ import annotations

#: `mutatenn run`'s exit code when the mutation score is below the threshold.
EXIT_BELOW_THRESHOLD = 3


def threshold_failure(overall: dict, threshold: float | None) -> str | None:
    """One line naming the score and the threshold when ``overall`` (the analysis's overall
    summary) is below ``threshold``; None when it is not, or there is no threshold."""
    if threshold is None:
        return None
    score = overall.get("mutation_score")
    if score is None:
        return (f"no mutation score (no mutant assessed) to hold against the threshold "
                f"{threshold:g}")
    if score < threshold:
        return (f"mutation score {score:.4g} ({overall['killed']} killed of "
                f"{overall['denominator']}) is below the threshold {threshold:g}")
    return None
