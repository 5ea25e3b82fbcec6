"""Local rehearsal of a compiled Vertex AI pipeline (`rehearse-vertex`).

Executes the PipelineJob JSON that `compile-vertex` writes the way Vertex AI
Pipelines does: task by task in dependency order, each container's compiled
`command` and `args` run as a subprocess with its placeholders resolved into
the executor input JSON Vertex would pass. What needs Google Cloud or its
hardware is substituted, and every substitution is printed:

  * the image's `python`: this project's `.venv` interpreter, and the image's
    package directory (`/pipeline`): this repository;
  * `gs://BUCKET/PATH`: `DIR/BUCKET/PATH` (`gcs.py`);
  * Dataflow: Beam's DirectRunner (`substitutions.py`);
  * the Trainer's Vertex AI Training custom job: a fake Vertex AI client
    captures the CustomJob and runs its worker pool's container command
    locally, TPU/GPU strategy replaced by the CPU one (`fake_vertex.py`);
  * Vertex's ML Metadata: a JSON record of the artifacts earlier rehearsals
    under the same DIR produced, which the resolver tasks query
    (`metadata.py`).

Modules: `spec.py` (reading the compiled JSON, dependency order,
placeholders), `executor_input.py`, `metadata.py`, `gcs.py`,
`substitutions.py`, `fake_vertex.py`, `task_runner.py`, `cli.py`.
"""
