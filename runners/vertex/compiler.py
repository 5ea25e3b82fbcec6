"""Compiles the pipeline for Vertex AI Pipelines and optionally submits it.

The pipeline is the one LocalDagRunner runs (`tfx_pipeline.pipeline`), built
from `VertexSettings`: Beam components on Dataflow, the Trainer on Vertex AI
Training, the schema and module code read from the container image. Settings
are validated before anything is compiled, and the compiled JSON is checked
for paths of this machine before anything is submitted.

Importing this module is cheap (TFX and google-cloud-aiplatform load inside
the functions), so `maskformer-tfx compile-vertex --help`
(`runners.commands.compile_vertex`) stays instant.
"""

import os
import pathlib
import re
import sys
import tempfile
from typing import Any, Iterable, List, Mapping, Sequence

from runners.vertex import accelerators
from runners.vertex import dataflow
from runners.vertex import pipeline_config
from runners.vertex import settings as vertex_settings
from runners.vertex import tpu_memory
from runners.vertex import validation
from runners.vertex.settings import VertexSettings
from runners.vertex.settings import VertexSettingsError
from tfx_pipeline import config as tfx_config
from tfx_pipeline import experiment_overrides


class LocalPathError(RuntimeError):
  """The compiled pipeline mentions a path of the compiling machine."""


CONSOLE_RUN_URL = ('https://console.cloud.google.com/vertex-ai/locations/'
                   '{region}/pipelines/runs/{job_id}?project={project}')


def apply_component_beam_args(pipeline: Any,
                              args_by_component: Mapping[str, Sequence[str]]
                              ) -> None:
  """Appends per-component Beam arguments to the pipeline's Beam components.

  They come after the pipeline-level arguments, so they win (Beam keeps the
  last value of a repeated flag). Components the pipeline lacks are skipped.

  Raises:
    ValueError: a named component is not a Beam component.
  """
  components = {component.id: component for component in pipeline.components}
  for component_id, args in args_by_component.items():
    component = components.get(component_id)
    if component is None:
      continue
    if not hasattr(component, 'with_beam_pipeline_args'):
      raise ValueError(f'{component_id} is not a Beam component; it takes no '
                       'Beam pipeline arguments.')
    component.with_beam_pipeline_args(list(args))


def local_paths(extra: Iterable[str] = ()) -> List[str]:
  """Directories of this machine that must not appear in a compiled pipeline.

  The working directory, home, temp directory, this repository and the
  Python environment (where the installed package files live); not the
  image's own package directory or its parents (when compiling in the image).
  """
  repo_root = pathlib.Path(__file__).resolve().parents[2]
  candidates = [os.getcwd(), os.path.expanduser('~'), tempfile.gettempdir(),
                str(repo_root), sys.prefix, *extra]
  image_dir = vertex_settings.IMAGE_PACKAGE_DIR
  return sorted({
      os.path.realpath(p) for p in candidates
      if p and not (image_dir + '/').startswith(
          os.path.realpath(p).rstrip('/') + '/')})


def find_local_paths(text: str, paths: Iterable[str]) -> List[str]:
  """Those of `paths` that occur in `text` as paths (not inside a URL)."""
  return [path for path in paths
          if re.search(r'(?<![\w.:/-])' + re.escape(path) + r'(?![\w.-])',
                       text)]


def memory_check(settings: VertexSettings, skip: bool = False) -> None:
  """The pre-flight: does the train step fit a chip of the TPU slice?

  From the experiment's measured memory per image (`tpu_memory`) and its
  global batch after the settings' overrides; no XLA compile.

  Raises:
    VertexSettingsError: it does not fit, and `skip` is False (with `skip`,
      the same message is printed as a warning).
  """
  if not settings.uses_tpu:
    return
  params = tfx_config.experiment_params(settings.experiment)
  params.override(experiment_overrides.merged_override(
      settings.config_files, settings.params_override, files_allowed=False),
                  is_strict=True)
  problem = tpu_memory.memory_problem(
      settings.experiment, settings.trainer_machine_type,
      settings.accelerator_type,
      accelerators.accelerator_count(settings.trainer_machine_type,
                                     settings.accelerator_type,
                                     settings.accelerator_count),
      params.task.train_data.global_batch_size)
  if problem is None:
    return
  if not skip:
    raise VertexSettingsError(
        f'The train step does not fit the TPU: {problem}')
  print(f'compile-vertex: warning: --skip-memory-check: compiling a train '
        f'step that does not fit the TPU: {problem}', file=sys.stderr)


def compile_pipeline(settings: VertexSettings, output_file: str,
                     skip_memory_check: bool = False) -> str:
  """Writes the Vertex AI Pipelines job JSON of `settings` to `output_file`.

  Returns:
    The path of the written file.

  Raises:
    VertexSettingsError: invalid settings, or a train step that does not fit
      the TPU chip's memory unless `skip_memory_check` (nothing is written).
    LocalPathError: the compiled JSON mentions a path of this machine (the
      file is removed).
  """
  validation.validate(settings)
  from tfx import v1 as tfx
  from trainer_module import registry_imports
  from tfx_pipeline.pipeline import create_pipeline
  from tfx_pipeline.report import exit_handler
  from tfx_pipeline.report import page
  try:
    experiment_overrides.check_against_experiment(
        settings.experiment, experiment_overrides.sources(
            settings.config_files, settings.params_override,
            files_allowed=False))
  except experiment_overrides.ExperimentOverrideError as error:
    raise VertexSettingsError(f'Invalid Vertex settings: {error}') from None
  memory_check(settings, skip=skip_memory_check)

  pipeline = create_pipeline(pipeline_config.to_pipeline_config(settings))
  apply_component_beam_args(
      pipeline, dataflow.component_beam_pipeline_args(settings))
  output_file = os.path.abspath(output_file)
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=settings.image),
      output_dir=os.path.dirname(output_file),
      output_filename=os.path.basename(output_file))
  # A job that stops early (the data gate) never reaches ReviewReport: the
  # exit handler, run after the pipeline whatever its outcome, writes the
  # page of such a job from what its tasks wrote.
  runner.set_exit_handler(exit_handler.ReviewReportOnExit(
      final_status=tfx.orchestration.experimental.FinalStatusStr(),
      pipeline_root=settings.pipeline_root,
      pipeline_name=settings.pipeline_name,
      num_examples=page.DEFAULT_NUM_EXAMPLES))
  runner.run(pipeline)

  with open(output_file, encoding='utf-8') as f:
    leaked = find_local_paths(f.read(), local_paths())
  if leaked:
    os.remove(output_file)
    raise LocalPathError(
        'The compiled pipeline mentions paths of this machine, which Vertex '
        f'AI cannot read: {", ".join(leaked)}. Give gs:// locations and '
        'in-image paths instead.')
  return output_file


def submit_pipeline(settings: VertexSettings, compiled_file: str) -> Any:
  """Creates and submits a Vertex AI PipelineJob; returns it (not waited on)."""
  from google.cloud import aiplatform
  job = aiplatform.PipelineJob(
      display_name=settings.pipeline_name,
      template_path=compiled_file,
      pipeline_root=settings.pipeline_root,
      project=settings.project,
      location=settings.region,
      enable_caching=settings.enable_cache)
  job.submit(service_account=settings.service_account)
  return job


def console_url(settings: VertexSettings, job_id: str) -> str:
  """The Cloud console page of a pipeline run."""
  return CONSOLE_RUN_URL.format(region=settings.region, job_id=job_id,
                                project=settings.project)
