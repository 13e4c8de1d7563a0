"""Everything MLflow beyond kedro-mlflow: the run's lifecycle (store set-up, status on signals,
stale-run clean-up), logging deferred until the pipeline succeeded, and the model registry."""
