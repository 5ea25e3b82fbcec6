"""Settings of a Vertex AI deployment and what they compile to.

  * `settings`: the `VertexSettings` dataclass (every field is a
    `compile-vertex` flag and a key of its `--config` YAML file);
  * `validation`: `load_settings` and `validate`, which name every wrong or
    missing setting at once, before anything is compiled or submitted;
  * `accelerators`: the worker pool's TPU slices and GPUs (GPU types from
    `google.cloud.aiplatform_v1.types.AcceleratorType`);
  * `dataflow`: DataflowRunner arguments of the Beam components;
  * `worker_pool`: the Vertex AI Training worker pool, its custom-job config
    and the TFMG runtime that matches it;
  * `pipeline_config`: the `PipelineConfig` the Vertex pipeline is built from.

Nothing here talks to Google Cloud.
"""
