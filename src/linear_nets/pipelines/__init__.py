"""One package per Kedro pipeline, discovered by ``find_pipelines``."""
