"""Reports: pure functions from a run's results to something a person or a CI reads."""
