"""The Training section: loss (per term, auxiliary decoder layers faint),
learning-rate and validation-PQ curves from the TensorBoard event files in
the Trainer's model_run artifact."""

import os
import re
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from tfx_pipeline.report import html_parts as h
from tfx_pipeline.report import run_record

# Loss terms of the final output; auxiliary decoder layer i adds `_i`.
_LOSS_TERMS = (('loss_ce', 'Class loss (cross-entropy)'),
               ('loss_mask', 'Mask loss (sigmoid focal)'),
               ('loss_dice', 'Mask loss (dice)'))
_TOTAL_LOSS_TAGS = ('total_loss', 'training_loss', 'loss')
_LEARNING_RATE_TAG = 'learning_rate'
ScalarSeries = Dict[str, Dict[str, List[Tuple[int, float]]]]


def read_scalar_summaries(log_dir: str) -> ScalarSeries:
  """{subdirectory: {tag: [(step, value)]}} of the TF event files under
  `log_dir` (the subdirectory of files directly in it is '').

  Reads TF2 scalar summaries (rank-0 tensors) and TF1 `simple_value`s; at a
  repeated step the latest event wins.
  """
  import tensorflow as tf
  latest: Dict[Tuple[str, str, int], Tuple[float, float]] = {}
  for directory, _, files in tf.io.gfile.walk(log_dir):
    subdir = os.path.relpath(directory, log_dir)
    subdir = '' if subdir == '.' else subdir
    for name in sorted(files):
      if 'tfevents' not in name:
        continue
      for event in tf.compat.v1.train.summary_iterator(
          os.path.join(directory, name)):
        for value in event.summary.value:
          if value.HasField('simple_value'):
            number = float(value.simple_value)
          elif value.HasField('tensor'):
            array = tf.make_ndarray(value.tensor)
            if array.ndim != 0 or not np.issubdtype(array.dtype, np.number):
              continue
            number = float(array)
          else:
            continue
          key = (subdir, value.tag, int(event.step))
          if key not in latest or event.wall_time >= latest[key][0]:
            latest[key] = (event.wall_time, number)
  series: ScalarSeries = {}
  for (subdir, tag, step), (_, number) in sorted(latest.items()):
    series.setdefault(subdir, {}).setdefault(tag, []).append((step, number))
  return series


def _plot(axes: Any, points: Sequence[Tuple[int, float]], **style: Any) -> None:
  steps, values = zip(*points)
  axes.plot(steps, values, marker='o' if len(points) < 20 else None,
            markersize=3, **style)


def _training_charts(series: ScalarSeries) -> str:
  """The loss, learning-rate and validation-PQ charts."""
  Line = Tuple[Tuple[str, str], str, Dict[str, Any]]

  def lines_for(tag_pattern: str, label: str) -> List[Line]:
    """Lines of the tags matching `tag_pattern` in every subdirectory; an
    auxiliary decoder layer (group `layer`) is drawn thin and faint."""
    lines = []
    for subdir, tags in sorted(series.items()):
      for tag in sorted(tags):
        match = re.fullmatch(tag_pattern, tag)
        if not match:
          continue
        layer = match.groupdict().get('layer')
        style: Dict[str, Any] = {'linewidth': 0.8 if layer else 2}
        if layer:
          style['alpha'] = 0.35
        if subdir != 'train':
          style['linestyle'] = '--'
        name = f'{label} aux {layer}' if layer else label
        lines.append(((subdir, tag), f'{subdir} {name}'.strip(), style))
    return lines

  panels: List[Tuple[str, List[Line]]] = []
  total_tag = next((tag for tag in _TOTAL_LOSS_TAGS
                    if any(tag in tags for tags in series.values())), None)
  if total_tag:
    panels.append(('Total loss', lines_for(re.escape(total_tag), 'total')))
  for term, title in _LOSS_TERMS:
    panels.append((title, lines_for(re.escape(term) + r'(_(?P<layer>\d+))?',
                                    term)))
  panels.append(('Learning rate', lines_for(re.escape(_LEARNING_RATE_TAG),
                                            'learning rate')))
  panels.append(('PQ (validation)', lines_for('pq', 'PQ')))
  panels = [(title, lines) for title, lines in panels if lines]
  if not panels:
    tags = sorted({tag for tags in series.values() for tag in tags})
    raise run_record.Unavailable('the event files hold none of the expected scalars '
                      f'(tags: {tags})')
  columns = min(3, len(panels))
  rows = (len(panels) + columns - 1) // columns
  figure = h.new_figure(4.4 * columns, 3.0 * rows)
  for index, (title, lines) in enumerate(panels):
    axes = figure.add_subplot(rows, columns, index + 1)
    for (subdir, tag), label, style in lines:
      _plot(axes, series[subdir][tag], label=label, **style)
    axes.set_title(title, fontsize=10)
    axes.set_xlabel('step', fontsize=8)
    axes.tick_params(labelsize=8)
    if len(lines) <= 8:
      axes.legend(fontsize=7)
  return h.figure_html(figure, 'Training curves')


def _training_html(run: run_record.PipelineRun) -> str:
  import tensorflow as tf
  model_run = run.output('Trainer', 'model_run')
  if not tf.io.gfile.isdir(model_run.uri):
    raise run_record.Unavailable(f'{model_run.uri} does not exist')
  series = read_scalar_summaries(model_run.uri)
  if not series:
    raise run_record.Unavailable(f'no TensorBoard event files under {model_run.uri}')
  chart = _training_charts(series)
  last_rows = []
  for subdir, tags in sorted(series.items()):
    for tag, points in sorted(tags.items()):
      if re.search(r'_\d+$', tag):
        continue  # Auxiliary layers: in the charts only.
      step, value = points[-1]
      last_rows.append([subdir or '.', tag, step, f'{value:.6g}'])
  return (f'<p>From the event files under <code>{h.e(model_run.uri)}</code> '
          '(solid: train, dashed: validation; faint: auxiliary decoder '
          'layers).</p>' + chart
          + '<details><summary>Last value of each scalar</summary>'
          + h.table(['Directory', 'Tag', 'Step', 'Value'], last_rows)
          + '</details>')


def training_section(run: run_record.PipelineRun) -> str:
  return h.subsection('Loss curves and learning rate',
                     lambda: _training_html(run))

