"""Turning notebook cells into the pipeline model; builds pipelines, never runs them."""
