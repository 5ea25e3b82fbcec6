"""Runners: the `maskformer-tfx` CLI (`cli`, `commands`) and the launchers of
the pipeline defined in `tfx_pipeline.pipeline` (local, Vertex AI)."""
