"""Review pages of runs in a local pipeline root (`maskformer-tfx report`,
and the end of `maskformer-tfx run`).

The run is found in the root's ML Metadata (`mlmd_run`) and the page built
by the same `page.build_report_html` as the ReviewReport component's. A run
whose ReviewReport component wrote its page already has it as an artifact
(`report_artifact_page`); `report_after_run` points there, and writes the
page itself only for a run that did not get that far (e.g. stopped at the
data gate).
"""

import logging
import os
from typing import Optional

from tfx_pipeline.report import mlmd_run
from tfx_pipeline.report import page as page_lib
from tfx_pipeline.report import run_record

REPORTS_DIR = 'reports'
# The ReviewReport component's node id, output key and page file name.
REPORT_NODE = 'ReviewReport'
REPORT_OUTPUT = 'report'
REPORT_FILE = 'report.html'


def default_output_path(pipeline_root: str, run_id: str) -> str:
  """PIPELINE_ROOT/reports/run-<run id with only [A-Za-z0-9._-]>.html."""
  return os.path.join(pipeline_root, REPORTS_DIR,
                      f'run-{mlmd_run.file_safe(run_id)}.html')


def write_report(pipeline_root: str, run_id: Optional[str] = None,
                 output: Optional[str] = None,
                 num_examples: int = page_lib.DEFAULT_NUM_EXAMPLES) -> str:
  """Writes the review page of a run and returns its path.

  Args:
    pipeline_root: a local pipeline root with `metadata.sqlite`.
    run_id: the pipeline run (default: the latest).
    output: the HTML file (default: `default_output_path`).
    num_examples: eval images shown with ground truth and prediction.

  Raises:
    ReportError: no ML Metadata, no run, or no run `run_id`.
  """
  pipeline_root = os.path.abspath(pipeline_root)
  run = mlmd_run.load_run(pipeline_root, run_id)
  page = page_lib.build_report_html(run, num_examples)
  output = os.path.abspath(output or default_output_path(pipeline_root,
                                                         run.run_id))
  return page_lib.write_page(page, output)


def report_artifact_page(run: run_record.PipelineRun) -> Optional[str]:
  """The report.html of the run's ReviewReport artifact, if it wrote one."""
  node = run.nodes.get(REPORT_NODE)
  if node is None or not node.succeeded:
    return None
  for artifact in node.outputs.get(REPORT_OUTPUT, []):
    path = os.path.join(artifact.uri, REPORT_FILE)
    if os.path.isfile(path):
      return path
  return None


def report_after_run(pipeline_root: str, run_id: str) -> str:
  """The page of run `run_id`: its ReviewReport artifact's, else written
  now (`write_report`); returns the line to show the user.

  For the end of `maskformer-tfx run`, whether the run succeeded or not:
  never raises (a failure is logged and named in the line).
  """
  pipeline_root = os.path.abspath(pipeline_root)
  metadata = os.path.join(pipeline_root, mlmd_run.METADATA_FILE)
  try:
    if (not os.path.isfile(metadata) or
        run_id not in dict(mlmd_run.list_runs(pipeline_root))):
      return ('Review report: none (the run stopped before its first '
              'component).')
    path = (report_artifact_page(mlmd_run.load_run(pipeline_root, run_id)) or
            write_report(pipeline_root, run_id))
  except Exception as error:
    logging.exception('The review report could not be written.')
    return f'Review report: not written ({type(error).__name__}: {error})'
  return f'Review report: {path}'

