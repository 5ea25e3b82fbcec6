"""The review page: one self-contained HTML document of a run's six
sections (Data, Drift, Model quality, Training, Examples, Provenance).

Charts are matplotlib PNGs inlined as base64, or inline SVG (the Drift
section's paired bars); the page loads nothing from the network. A section
that cannot be shown says "not available: <why>" (e.g. the run stopped at
the data gate, the Evaluator failed).
"""

import datetime
import os

from tfx_pipeline.report import data_section
from tfx_pipeline.report import drift_section
from tfx_pipeline.report import examples_section
from tfx_pipeline.report import html_parts as h
from tfx_pipeline.report import provenance_section
from tfx_pipeline.report import quality_section
from tfx_pipeline.report import run_record
from tfx_pipeline.report import training_section

DEFAULT_NUM_EXAMPLES = 6
SECTIONS = (('data', 'Data'), ('drift', 'Drift'),
            ('quality', 'Model quality'), ('training', 'Training'),
            ('examples', 'Examples'), ('provenance', 'Provenance'))


def _status_strip(run: run_record.PipelineRun) -> str:
  if run.pipeline_root is None:  # Built from artifacts: what was given.
    node_ids = run.ordered_node_ids()
  else:
    node_ids = list(run_record.PIPELINE_NODES) + sorted(
        set(run.nodes) - set(run_record.PIPELINE_NODES))
  items = []
  for node_id in node_ids:
    node = run.nodes.get(node_id)
    state = node.state.lower() if node is not None else 'did not run'
    css = ('good' if node is not None and node.succeeded else
           'bad' if node is not None and node.state == 'FAILED' else 'muted')
    items.append(f'<li class="{css}">{h.e(node_id)}: {h.e(state)}</li>')
  failed = run.failed_nodes()
  if failed:
    outcome = (f'<p class="bad">The run failed at {h.e(failed[0])}'
               + (f': {h.e(run.error)}' if run.error else '') + '</p>')
  else:
    outcome = ''
  return f'<ul class="status">{"".join(items)}</ul>{outcome}'


# The page loads nothing: inline styles, images as data: URIs, no scripts.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif;
  margin: 0 auto; max-width: 1200px; padding: 0 24px 48px; color: #1f2328;
  line-height: 1.45; }
header { border-bottom: 1px solid #d0d7de; padding: 16px 0 8px; }
nav a { margin-right: 16px; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 4px; margin-top: 36px; }
h3 { margin-top: 24px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left;
  vertical-align: top; }
th { background: #f6f8fa; }
code, pre { font-family: ui-monospace, 'SFMono-Regular', monospace;
  font-size: 13px; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; }
td code { word-break: break-all; }
td code.feature { word-break: normal; white-space: nowrap; }
.artifacts td:last-child { font-family: ui-monospace, monospace;
  font-size: 12px; word-break: break-all; }
.good { color: #1a7f37; }
.bad { color: #cf222e; }
.muted { color: #656d76; }
.unavailable { color: #9a6700; background: #fff8c5; padding: 6px 10px;
  border-left: 4px solid #d4a72c; }
.note, .caption { color: #656d76; font-size: 14px; }
.status { list-style: none; padding: 0; display: flex; flex-wrap: wrap;
  gap: 4px 16px; font-size: 14px; }
.metric { font-weight: 600; }
img.chart { max-width: 100%; }
.panels { display: flex; gap: 12px; flex-wrap: wrap; }
figure { margin: 0; text-align: center; }
img.example { width: 256px; image-rendering: pixelated; border: 1px solid
  #d0d7de; }
figcaption { font-size: 13px; color: #656d76; }
.legend { margin: 6px 0 18px; font-size: 13px; }
.legend-item { margin-right: 14px; white-space: nowrap; }
tr.bad td { background: #ffebe9; }
svg.drift-bars { display: block; max-width: 100%; height: auto; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px;
  vertical-align: middle; border: 1px solid #999; }
"""


def build_report_html(run: run_record.PipelineRun,
                      num_examples: int = DEFAULT_NUM_EXAMPLES) -> str:
  """The review page of `run` as one self-contained HTML document."""
  builders = {
      'data': lambda: data_section.data_section(run),
      'drift': lambda: drift_section.drift_section(run),
      'quality': lambda: quality_section.quality_section(run),
      'training': lambda: training_section.training_section(run),
      'examples': lambda: examples_section.examples_section(run,
                                                            num_examples),
      'provenance': lambda: provenance_section.provenance_section(run),
  }
  sections = []
  for section_id, title in SECTIONS:
    sections.append(f'<section id="{section_id}"><h2>{h.e(title)}</h2>\n'
                    f'{builders[section_id]()}</section>')
  nav = ''.join(f'<a href="#{section_id}">{h.e(title)}</a>'
                for section_id, title in SECTIONS)
  title = f'{run.pipeline_name} run {run.run_id}'.rstrip()
  generated = datetime.datetime.now().isoformat(sep=' ', timespec='seconds')
  return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>{h.e(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<header>
<h1>{h.e(title)}</h1>
<p class="muted">Review report generated {h.e(generated)} from
{h.e(run.source)}.</p>
{_status_strip(run)}
<nav>{nav}</nav>
</header>
{''.join(sections)}
</body>
</html>
"""


def write_page(page: str, output: str) -> str:
  """Writes an HTML page (local or gs:// path); returns `output`."""
  import tensorflow as tf
  tf.io.gfile.makedirs(os.path.dirname(output))
  with tf.io.gfile.GFile(output, 'w') as f:
    f.write(page)
  return output
