"""Tests for the batched Hungarian matcher against scipy."""

import numpy as np
import pytest
from scipy import optimize
import tensorflow as tf

from trainer_module.ops.hungarian_matching import hungarian_matching

_FLOAT32_EPS = float(np.finfo(np.float32).eps)

# (name, batch, rows, cols): 222 matrices in total, square and rectangular.
_CASES = [
    ("uniform", 24, 6, 6),
    ("uniform", 16, 5, 9),
    ("uniform", 16, 9, 4),
    ("uniform", 4, 30, 30),
    ("integer", 24, 7, 7),
    ("integer", 16, 4, 10),
    ("integer", 16, 10, 3),
    ("binary", 16, 8, 8),
    ("large", 16, 8, 8),
    ("large", 16, 6, 11),
    ("huge", 16, 7, 5),
    ("negative", 16, 8, 12),
    ("constant", 4, 5, 7),
    ("one_row", 8, 1, 6),
    ("one_col", 8, 6, 1),
    ("mixed_scale", 8, 9, 9),
]

# Kinds whose random matrices have a unique optimum.
_UNIQUE_OPTIMUM_KINDS = ("uniform", "one_row", "one_col", "mixed_scale")

_jit_matching = tf.function(hungarian_matching, jit_compile=True)


def _random_costs(kind: str, shape: tuple[int, ...],
                  rng: np.random.Generator) -> np.ndarray:
  """Returns float32 cost matrices of one kind."""
  if kind in ("uniform", "one_row", "one_col"):
    costs = rng.uniform(0.0, 1.0, shape)
  elif kind == "integer":
    costs = rng.integers(0, 4, shape)
  elif kind == "binary":
    costs = rng.integers(0, 2, shape)
  elif kind == "large":
    costs = rng.uniform(1e6, 1e9, shape)
  elif kind == "huge":
    costs = rng.choice([-3e30, 1e30, 2e30, 3e30], shape) * rng.uniform(
        0.5, 1.0, shape)
  elif kind == "negative":
    costs = rng.normal(-50.0, 20.0, shape)
  elif kind == "constant":
    costs = np.full(shape, 3.5)
  elif kind == "mixed_scale":
    # Small useful costs plus very large "forbidden" entries.
    costs = np.where(
        rng.uniform(size=shape) < 0.3, 1e9, rng.uniform(0.0, 1.0, shape))
  else:
    raise ValueError(kind)
  return costs.astype(np.float32)


def _check_against_scipy(costs: np.ndarray, assignment: np.ndarray,
                         exact_assignment: bool) -> None:
  """Asserts that `assignment` is valid and as cheap as scipy's optimum."""
  batch, rows, cols = costs.shape
  assert assignment.dtype == bool
  assert assignment.shape == costs.shape
  for b in range(batch):
    assert assignment[b].sum() == min(rows, cols)
    assert assignment[b].sum(axis=1).max() <= 1
    assert assignment[b].sum(axis=0).max() <= 1
    cost64 = costs[b].astype(np.float64)
    ref_rows, ref_cols = optimize.linear_sum_assignment(cost64)
    expected_total = cost64[ref_rows, ref_cols].sum()
    total = cost64[assignment[b]].sum()
    value_range = cost64.max() - cost64.min()
    tolerance = 8 * min(rows, cols) * _FLOAT32_EPS * value_range
    assert abs(total - expected_total) <= tolerance, (b, total,
                                                      expected_total)
    if exact_assignment:
      expected = np.zeros((rows, cols), bool)
      expected[ref_rows, ref_cols] = True
      np.testing.assert_array_equal(assignment[b], expected)


@pytest.mark.parametrize("kind,batch,rows,cols", _CASES)
def test_matches_scipy_under_jit(kind: str, batch: int, rows: int,
                                 cols: int) -> None:
  rng = np.random.default_rng(_CASES.index((kind, batch, rows, cols)))
  costs = _random_costs(kind, (batch, rows, cols), rng)
  assignment = _jit_matching(tf.constant(costs)).numpy()
  # Random continuous costs have a unique optimum (for "mixed_scale" one that
  # avoids the 1e9 entries): the assignment must be exactly scipy's.
  _check_against_scipy(
      costs, assignment,
      exact_assignment=kind in _UNIQUE_OPTIMUM_KINDS)


@pytest.mark.parametrize("rows,cols", [(3, 5), (5, 3)])
def test_eager_and_graph_agree_with_scipy(rows: int, cols: int) -> None:
  rng = np.random.default_rng(rows * 10 + cols)
  costs = _random_costs("uniform", (3, rows, cols), rng)
  eager = hungarian_matching(tf.constant(costs)).numpy()
  graph = tf.function(hungarian_matching)(tf.constant(costs)).numpy()
  _check_against_scipy(costs, eager, exact_assignment=True)
  _check_against_scipy(costs, graph, exact_assignment=True)


def test_known_permutation_is_recovered() -> None:
  permutation = np.array([3, 0, 4, 1, 2])
  costs = np.ones((1, 5, 5), np.float32)
  costs[0, np.arange(5), permutation] = 0.0
  assignment = _jit_matching(tf.constant(costs)).numpy()[0]
  np.testing.assert_array_equal(np.argmax(assignment, axis=1), permutation)


def test_bfloat16_input_is_accepted() -> None:
  rng = np.random.default_rng(0)
  costs = _random_costs("integer", (4, 5, 6), rng)
  assignment = _jit_matching(tf.constant(costs, tf.bfloat16)).numpy()
  _check_against_scipy(costs, assignment, exact_assignment=False)


def test_rejects_dynamic_shapes() -> None:
  dynamic = tf.function(
      hungarian_matching,
      input_signature=[tf.TensorSpec([None, None, 4], tf.float32)])
  with pytest.raises(ValueError):
    dynamic.get_concrete_function()


def test_dynamic_batch_size_is_supported() -> None:
  matching = tf.function(
      hungarian_matching, jit_compile=True,
      input_signature=[tf.TensorSpec([None, 4, 6], tf.float32)])
  costs = _random_costs("uniform", (3, 4, 6), np.random.default_rng(1))
  _check_against_scipy(
      costs, matching(tf.constant(costs)).numpy(), exact_assignment=True)
