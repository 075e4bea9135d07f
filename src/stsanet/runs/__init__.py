"""Jobs: a validated config in, work done, results written (train, predict, evaluate, scoring,
reproduce and its table)."""
