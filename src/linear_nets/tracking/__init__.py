"""Everything MLflow: the run's lifecycle (store set-up, status on signals, stale-run clean-up),
publishing what a successful run produced, and the model registry."""
