"""The Provenance section: pipeline and run, every artifact's URI, the
experiment's hyperparameters (the Trainer's params.yaml) and package
versions."""

import importlib.metadata
import json
import os
import sys
from typing import Any, Dict

from tfx_pipeline.report import html_parts as h
from tfx_pipeline.report import run_record

PACKAGES = ('tfx', 'tensorflow', 'tf-models-official',
            'tensorflow-data-validation', 'tensorflow-model-analysis',
            'tensorflow-transform', 'apache-beam', 'ml-metadata',
            'maskformer-tfx')
_KEY_HYPERPARAMETERS = (
    'task.model', 'task.losses', 'task.train_data.global_batch_size',
    'task.train_data.output_size', 'task.train_data.num_segment_slots',
    'task.validation_data.global_batch_size', 'task.init_checkpoint',
    'trainer.train_steps', 'trainer.validation_steps',
    'trainer.optimizer_config', 'runtime.distribution_strategy',
    'runtime.mixed_precision_dtype')


def _flatten(config: Any, prefix: str = '') -> Dict[str, Any]:
  if isinstance(config, dict):
    flat = {}
    for key, value in config.items():
      flat.update(_flatten(value, f'{prefix}.{key}' if prefix else str(key)))
    return flat
  return {prefix: config}


def _hyperparameters_html(run: run_record.PipelineRun) -> str:
  import tensorflow as tf
  trainer = run.nodes.get('Trainer')
  if trainer is None:
    raise run_record.Unavailable(run.why_missing('Trainer'))
  custom_config = json.loads(trainer.exec_properties.get('custom_config')
                             or '{}')
  rows = [[key, json.dumps(value)] for key, value in sorted(
      custom_config.items())]
  for key in ('train_args', 'eval_args'):
    if key in trainer.exec_properties:
      rows.append([key, ' '.join(str(trainer.exec_properties[key]).split())])
  parts = []
  if rows:  # Only ML Metadata has the execution's properties.
    parts += [h.table_caption(
        'Trainer custom_config and arguments (ML Metadata)'),
              h.table(['Key', 'Value'], rows)]
  model_run = trainer.outputs.get('model_run', [])
  params_path = (os.path.join(model_run[0].uri, 'params.yaml') if model_run
                 else None)
  if params_path and tf.io.gfile.exists(params_path):
    import yaml
    with tf.io.gfile.GFile(params_path, 'r') as f:
      text = f.read()
    flat = _flatten(yaml.safe_load(text) or {})
    key_rows = [[key, json.dumps(value)] for key, value in sorted(flat.items())
                if any(key == p or key.startswith(p + '.')
                       for p in _KEY_HYPERPARAMETERS)]
    parts += [h.table_caption(f'Key hyperparameters ({params_path})'),
              h.table(['Parameter', 'Value'], key_rows, css_class='params'),
              '<details><summary>Full experiment config (params.yaml)'
              f'</summary><pre>{h.e(text)}</pre></details>']
  else:
    parts.append('<p>No params.yaml in the Trainer\'s model_run directory.</p>')
  return ''.join(parts)


def _artifacts_html(run: run_record.PipelineRun) -> str:
  rows = []
  for node_id in run.ordered_node_ids():
    node = run.nodes[node_id]
    for direction, artifacts_by_key in (('out', node.outputs),
                                        ('in', node.inputs)):
      for key, artifacts in sorted(artifacts_by_key.items()):
        if direction == 'in' and node_id != 'Evaluator':
          continue  # Inputs are some other node's outputs, listed there.
        for artifact in artifacts:
          rows.append([node_id, f'{key} ({direction})', artifact.type_name,
                       artifact.uri])
  return h.table(['Component', 'Artifact', 'Type', 'URI'], rows,
                 css_class='artifacts')


def _versions_html() -> str:
  rows = []
  for package in PACKAGES:
    try:
      version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      version = 'not installed'
    rows.append([package, version])
  rows.append(['python', sys.version.split()[0]])
  return h.table(['Package', 'Version'], rows)


def provenance_section(run: run_record.PipelineRun) -> str:
  rows = [['Pipeline', run.pipeline_name], ['Run id', run.run_id or '—']]
  if run.started is not None:
    rows.append(['Started', run.started.isoformat(sep=' ', timespec='seconds')])
  if run.pipeline_root is not None:
    rows.append(['Pipeline root', run.pipeline_root])
  rows.append(['Read from', run.source])
  overview = h.table(None, rows, css_class='overview')
  return '\n'.join([
      overview,
      h.subsection('Artifacts', lambda: _artifacts_html(run)),
      h.subsection('Experiment and hyperparameters',
                   lambda: _hyperparameters_html(run)),
      h.subsection('Package versions', _versions_html),
  ])

