"""Running the pipeline model locally: scheduler, executors, step runtime, store, cache, events."""
