"""ReviewReportOnExit: the review page of a Vertex job that stopped early.

The ReviewReport component runs last, so a job stopped by the
DataValidationGate (or failing anywhere) never reaches it. On Vertex AI
Pipelines this exit handler runs after the pipeline whatever its outcome
(TFX: `KubeflowV2DagRunner.set_exit_handler`; the pipeline becomes the
`tfx-dag` sub-DAG and this task runs after it with trigger policy
ALL_UPSTREAM_TASKS_COMPLETED). It gets parameters only, no artifacts: the
job's final status (`FinalStatusStr`, the JSON of KFP's
PipelineTaskFinalStatus: state, pipelineJobResourceName, error) and the
pipeline root. From them it reads what the job's tasks wrote
(`vertex_job.load_run`) and:

* the job did not succeed: writes the page (`page.build_report_html`, the
  same page as the component's) into its `report` artifact;
* the job succeeded: ReviewReport wrote the run's page; this writes only
  `run_page.txt`, the URI of that page, so each run has one page.

Local runs do not use it: `maskformer-tfx run` writes the page of a stopped
run from ML Metadata (`local_root.report_after_run`).
"""

import logging
import os

from tfx import v1 as tfx

from tfx_pipeline.report import local_root
from tfx_pipeline.report import page
from tfx_pipeline.report import vertex_job
from tfx_pipeline.report.component import ReviewReportPage

EXIT_HANDLER_ID = 'ReviewReportOnExit'
RUN_PAGE_FILE = 'run_page.txt'


@tfx.orchestration.experimental.exit_handler
def ReviewReportOnExit(
    final_status: tfx.dsl.components.Parameter[str],
    pipeline_root: tfx.dsl.components.Parameter[str],
    pipeline_name: tfx.dsl.components.Parameter[str],
    num_examples: tfx.dsl.components.Parameter[int],
    report: tfx.dsl.components.OutputArtifact[ReviewReportPage]) -> None:
  """Writes the page of a job that did not succeed (see the module doc)."""
  status = vertex_job.parse_final_status(final_status)
  if status.succeeded:
    job_root = vertex_job.find_job_root(pipeline_root, status.job_id)
    run_page = vertex_job.report_page(
        job_root, local_root.REPORT_NODE, local_root.REPORT_OUTPUT,
        local_root.REPORT_FILE)
    logging.info('Job %s succeeded; its review page: %s', status.job_id,
                 run_page)
    page.write_page(f'{run_page or "none (ReviewReport wrote no page)"}\n',
                    os.path.join(report.uri, RUN_PAGE_FILE))
    return
  run = vertex_job.load_run(pipeline_root, status, pipeline_name,
                            skip_tasks=(EXIT_HANDLER_ID,))
  path = page.write_page(page.build_report_html(run, num_examples),
                         os.path.join(report.uri, local_root.REPORT_FILE))
  logging.info('Job %s %s; its review page: %s', status.job_id,
               status.state.lower(), path)
