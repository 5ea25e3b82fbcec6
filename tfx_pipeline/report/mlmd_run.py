"""A run of a local pipeline root, read from its ML Metadata (SQLite).

`maskformer-tfx run` and `validate` record every execution in
PIPELINE_ROOT/metadata.sqlite; runs are `pipeline_run` contexts named by run
id. This is what `maskformer-tfx report PIPELINE_ROOT` and the report of a
failed local run read; the ReviewReport component does not (it has its input
artifacts).
"""

import datetime
import glob
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from tfx_pipeline import run_lock
from tfx_pipeline.report import run_record

METADATA_FILE = 'metadata.sqlite'
LOGS_DIR = 'logs'
PIPELINE_RUN_CONTEXT = 'pipeline_run'
PIPELINE_CONTEXT = 'pipeline'
NODE_CONTEXT = 'node'
RUNNING = 'RUNNING'


def file_safe(run_id: str) -> str:
  """`run_id` with only [A-Za-z0-9._-] (for file names)."""
  return re.sub(r'[^A-Za-z0-9._-]', '-', run_id)


def log_path(pipeline_root: str, run_id: str) -> str:
  """PIPELINE_ROOT/logs/run-<run id>.log: the CLI's log of one run."""
  return os.path.join(pipeline_root, LOGS_DIR, f'run-{file_safe(run_id)}.log')


def _metadata_store(metadata_path: str) -> Any:
  """A read-only MetadataStore on a SQLite ML Metadata file."""
  from ml_metadata.metadata_store import metadata_store
  from ml_metadata.proto import metadata_store_pb2
  if not os.path.isfile(metadata_path):
    raise run_record.ReportError(
        f'No ML Metadata at {metadata_path}: is this a pipeline root of '
        '`maskformer-tfx run` or `validate`?')
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
  return metadata_store.MetadataStore(config)


def list_runs(pipeline_root: str) -> List[Tuple[str, datetime.datetime]]:
  """(run id, start time) of every run in the pipeline root, oldest first."""
  store = _metadata_store(os.path.join(pipeline_root, METADATA_FILE))
  contexts = sorted(store.get_contexts_by_type(PIPELINE_RUN_CONTEXT),
                    key=lambda context: context.create_time_since_epoch)
  return [(context.name, _time(context.create_time_since_epoch))
          for context in contexts]


def _time(milliseconds: int) -> datetime.datetime:
  return datetime.datetime.fromtimestamp(milliseconds / 1000)


def load_run(pipeline_root: str, run_id: Optional[str] = None) -> run_record.PipelineRun:
  """Reads a run (default: the latest) from the pipeline root's ML Metadata.

  Raises:
    ReportError: no ML Metadata, no run, or no run `run_id`.
  """
  from ml_metadata.proto import metadata_store_pb2
  event_types = metadata_store_pb2.Event
  store = _metadata_store(os.path.join(pipeline_root, METADATA_FILE))
  runs = store.get_contexts_by_type(PIPELINE_RUN_CONTEXT)
  if not runs:
    raise run_record.ReportError(
        f'{pipeline_root} has no pipeline runs in ML Metadata.')
  if run_id is None:
    context = max(runs, key=lambda run: run.create_time_since_epoch)
  else:
    matching = [run for run in runs if run.name == run_id]
    if not matching:
      known = ', '.join(sorted(run.name for run in runs))
      raise run_record.ReportError(
          f'No run {run_id!r} in {pipeline_root}; runs: {known}.')
    context = matching[0]

  executions = store.get_executions_by_context(context.id)
  events = store.get_events_by_execution_ids([e.id for e in executions])
  artifact_ids = sorted({event.artifact_id for event in events})
  artifacts = {a.id: a for a in store.get_artifacts_by_id(artifact_ids)}
  type_names = {t.id: t.name for t in store.get_artifact_types_by_id(
      sorted({a.type_id for a in artifacts.values()}))}
  records = {
      artifact_id: run_record.ArtifactRecord(
          id=artifact_id,
          type_name=type_names.get(artifact.type_id, ''),
          uri=artifact.uri,
          properties={**run_record.property_values(artifact.properties),
                      **run_record.property_values(artifact.custom_properties)})
      for artifact_id, artifact in artifacts.items()
  }

  pipeline_name = ''
  nodes: Dict[str, run_record.NodeRun] = {}
  for execution in sorted(executions, key=lambda e: e.create_time_since_epoch):
    node_id = ''
    for execution_context in store.get_contexts_by_execution(execution.id):
      if execution_context.type == PIPELINE_CONTEXT:
        pipeline_name = execution_context.name
      elif execution_context.type == NODE_CONTEXT:
        node_id = execution_context.name
    if pipeline_name and node_id.startswith(pipeline_name + '.'):
      node_id = node_id[len(pipeline_name) + 1:]
    node = run_record.NodeRun(
        node_id=node_id,
        state=type(execution).State.Name(execution.last_known_state),
        exec_properties={**run_record.property_values(execution.properties),
                         **run_record.property_values(execution.custom_properties)},
        inputs={}, outputs={})
    for event in events:
      if event.execution_id != execution.id or not event.path.steps:
        continue
      if event.type in (event_types.INPUT, event_types.DECLARED_INPUT):
        side = node.inputs
      elif event.type in (event_types.OUTPUT, event_types.DECLARED_OUTPUT,
                          event_types.PENDING_OUTPUT):
        side = node.outputs
      else:
        continue
      key = event.path.steps[0].key
      side.setdefault(key, []).append(records[event.artifact_id])
    nodes[node_id] = node  # A retried node: its latest execution counts.

  live = run_lock.holder(pipeline_root)
  if live is None or live.run_id != context.name:
    # The run is over: what ML Metadata still has running, its process left
    # unfinished when it died.
    for node in nodes.values():
      if node.state == RUNNING:
        node.state = run_record.INTERRUPTED
  metadata_path = os.path.join(pipeline_root, METADATA_FILE)
  return run_record.PipelineRun(
      pipeline_root=pipeline_root, pipeline_name=pipeline_name,
      run_id=context.name, started=_time(context.create_time_since_epoch),
      nodes=nodes, error=run_error_message(pipeline_root, context.name),
      source=f'ML Metadata {metadata_path}')


def run_error_message(pipeline_root: str, run_id: str,
                      max_chars: int = 600) -> Optional[str]:
  """The exception that ended a run, from the CLI's log of it, if any.

  `maskformer-tfx run/validate` log each run to `log_path`; a log of
  another name is read if it mentions the run id. Returns the last
  traceback's final line.
  """
  marker = f"pipeline_run_id='{run_id}'"
  own = log_path(pipeline_root, run_id)
  others = sorted(glob.glob(os.path.join(pipeline_root, LOGS_DIR, '*.log')),
                  reverse=True)
  for path in [own] + [path for path in others if path != own]:
    if not os.path.isfile(path):
      continue
    with open(path, encoding='utf-8', errors='replace') as log:
      text = log.read()
    if path != own and marker not in text:
      continue
    tracebacks = text.split('Traceback (most recent call last):\n')
    if len(tracebacks) < 2:
      return None
    for line in tracebacks[-1].splitlines():
      if line and not line[0].isspace():
        return line if len(line) <= max_chars else line[:max_chars] + ' ...'
  return None

