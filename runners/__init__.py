"""Runners: thin launchers of the pipeline defined in `tfx_pipeline.pipeline`."""
