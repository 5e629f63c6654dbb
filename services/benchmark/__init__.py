"""`escalation bench`: the whole pipeline under a realistic mix, next to raw baselines of the same run."""
