"""HTML building blocks of the review page (escaped text, tables, inline
PNG images and charts, subsections that say why they are not available)."""

import base64
import html
import io
import logging
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tfx_pipeline.report import run_record


def e(value: Any) -> str:
  return html.escape(str(value))


def table(header: Optional[Sequence[str]], rows: Sequence[Sequence[Any]],
           raw_html: bool = False, css_class: str = '') -> str:
  """An HTML table (no header row if `header` is None); cells are escaped
  unless `raw_html`."""
  cell = (lambda value: str(value)) if raw_html else e
  head = ('<thead><tr>' + ''.join(f'<th>{e(name)}</th>' for name in header)
          + '</tr></thead>') if header is not None else ''
  body = ''.join('<tr>' + ''.join(f'<td>{cell(value)}</td>' for value in row)
                 + '</tr>' for row in rows)
  attribute = f' class="{css_class}"' if css_class else ''
  return f'<table{attribute}>{head}<tbody>{body}</tbody></table>'


def unavailable(why: str) -> str:
  return f'<p class="unavailable">not available: {e(why)}</p>'


def subsection(title: str, build: Callable[[], str]) -> str:
  """An <h3> part of a section; failures become "not available: <why>"."""
  try:
    body = build()
  except run_record.Unavailable as reason:
    body = unavailable(str(reason))
  except Exception as error:
    logging.exception('Report: %s could not be built.', title)
    body = unavailable(f'reading it failed: {type(error).__name__}: {error}')
  return f'<h3>{e(title)}</h3>\n{body}'


def png_data_uri(png: bytes) -> str:
  return 'data:image/png;base64,' + base64.b64encode(png).decode('ascii')


def figure_html(figure: Any, alt: str) -> str:
  """A matplotlib Figure as an inline PNG <img>."""
  buffer = io.BytesIO()
  figure.savefig(buffer, format='png', dpi=100, bbox_inches='tight')
  return (f'<img class="chart" alt="{e(alt)}" '
          f'src="{png_data_uri(buffer.getvalue())}">')


def new_figure(width: float, height: float) -> Any:
  """A matplotlib Figure that does not touch pyplot's global state."""
  from matplotlib.figure import Figure
  return Figure(figsize=(width, height), layout='constrained')


def format(value: float, digits: int = 4) -> str:
  return f'{value:.{digits}f}'


def number(value: float) -> str:
  """A statistic in few characters."""
  if value == int(value) and abs(value) < 1e9:
    return str(int(value))
  return f'{value:.4g}'


def table_caption(text: str) -> str:
  return f'<p class="caption">{e(text)}</p>'


def png_img(array: np.ndarray, alt: str) -> str:
  from PIL import Image
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format='PNG')
  return (f'<img class="example" alt="{e(alt)}" '
          f'src="{png_data_uri(buffer.getvalue())}">')

