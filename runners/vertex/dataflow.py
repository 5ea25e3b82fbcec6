"""DataflowRunner arguments of the Beam components on Vertex AI Pipelines."""

from typing import Dict, List

from runners.vertex.settings import VertexSettings

# The Evaluator's TFX component id and Transform's: they get larger machines.
TRANSFORM_COMPONENT_ID = 'Transform'
EVALUATOR_COMPONENT_ID = 'Evaluator'


def dataflow_beam_pipeline_args(settings: VertexSettings) -> List[str]:
  """DataflowRunner arguments of every Beam component.

  Dataflow runs the pipeline image as SDK container (Runner v2), so the
  workers have this package and its pinned dependencies; temp and staging
  files go under the pipeline root.
  """
  root = settings.pipeline_root.rstrip('/')
  args = [
      '--runner=DataflowRunner',
      f'--project={settings.project}',
      f'--region={settings.region}',
      f'--temp_location={root}/tmp/dataflow',
      f'--staging_location={root}/tmp/dataflow-staging',
      f'--machine_type={settings.dataflow_machine_type}',
      f'--max_num_workers={settings.dataflow_max_num_workers}',
      f'--disk_size_gb={settings.dataflow_disk_size_gb}',
      f'--sdk_container_image={settings.image}',
      '--sdk_location=container',
      '--experiments=use_runner_v2',
  ]
  if settings.service_account:
    args.append(f'--service_account_email={settings.service_account}')
  if settings.dataflow_subnetwork:
    args.append(f'--subnetwork={settings.dataflow_subnetwork}')
  return args + list(settings.extra_beam_args)


def component_beam_pipeline_args(settings: VertexSettings
                                 ) -> Dict[str, List[str]]:
  """Per-component Beam arguments (after the pipeline's, so they win)."""
  return {
      TRANSFORM_COMPONENT_ID: [
          f'--machine_type={settings.transform_machine_type}',
          f'--max_num_workers={settings.transform_max_num_workers}'],
      EVALUATOR_COMPONENT_ID: [
          f'--machine_type={settings.evaluator_machine_type}',
          f'--max_num_workers={settings.evaluator_max_num_workers}'],
  }
