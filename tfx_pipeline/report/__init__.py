"""Review report: one self-contained HTML page per pipeline run.

* `run_record`: what a page is built from (a run's artifacts by node and
  output key); `mlmd_run`: such a record read from a local root's ML Metadata.
* `page`: the page (`build_report_html`), one module per section
  (`data_section`, `quality_section`, `training_section`,
  `examples_section`, `provenance_section`) on `html_parts`.
* `component`: the ReviewReport TFX component, last in the pipeline, which
  builds the page from its input artifacts only (local and Vertex runs).
* `exit_handler` and `vertex_job`: on Vertex AI Pipelines, the page of a job
  that stopped before ReviewReport (e.g. at the data gate), built after the
  pipeline from the job's final status and its task outputs.
* `local_root`: the page of a local run, written by `maskformer-tfx report
  PIPELINE_ROOT` (`runners.commands.report`) and at the end of
  `maskformer-tfx run`.

Importing this package is cheap (TensorFlow, TFX, ML Metadata and
matplotlib load inside the functions), so the CLI can register `report`
without slowing `--help`.
"""

from tfx_pipeline.report.local_root import report_after_run
from tfx_pipeline.report.local_root import write_report
from tfx_pipeline.report.page import SECTIONS
from tfx_pipeline.report.run_record import ReportError
