"""Exact, batched, XLA-compilable Hungarian matching (linear sum assignment).

The solver is the shortest-augmenting-path form of the Hungarian algorithm with
row and column potentials (Jonker-Volgenant style, O(n^2 m) per matrix for n
rows and m >= n columns). Every matrix of the batch runs the same row loop in
lock step; the data-dependent inner loops (Dijkstra-like search for an
augmenting path and the augmentation itself) are `tf.while_loop`s that run
until every matrix of the batch has finished, with finished matrices masked
out. All shapes are static, so the op compiles with
`tf.function(jit_compile=True)` on CPU, GPU and TPU.

Precision: the search runs in float32 (TPUs have no float64). To keep the
potentials well conditioned for costs of any magnitude, each matrix is first
normalised: the minimum of each row is subtracted (all rows are assigned, so
this shifts every assignment's total by the same amount) and the result is
divided by its maximum (a positive scale does not change the optimum). The
normalised costs lie in [0, 1], so the returned assignment is optimal up to
float32 rounding of the costs' range (about n * 1e-7 * (max - min) in total).

Speed: the solver is always compiled with XLA (a nested
`tf.function(jit_compile=True)`), also when the caller runs eagerly or in a
plain `tf.function`: as TF graph `while_loop`s its thousands of small
iterations are much slower on CPU (`benchmarks/bench_matcher.py` times the
compiled solver). Inside an XLA-compiled caller (TPU, `jit_compile=True`) it
is simply inlined.
"""

import tensorflow as tf


def _solve_rows_le_cols(cost: tf.Tensor) -> tf.Tensor:
  """Solves a batch of assignment problems with rows <= columns.

  Args:
    cost: float32 [B, n, m] with n <= m, finite, normalised to [0, 1].

  Returns:
    int32 [B, m]: the row assigned to each column, -1 for unassigned columns.
  """
  batch_size, num_rows, num_cols = cost.shape
  batch_size = tf.shape(cost)[0] if batch_size is None else batch_size
  # Columns are indexed 0..m-1; index m is a dummy column that holds the row
  # being inserted while its augmenting path is searched.
  dummy = num_cols
  inf = tf.constant(float("inf"), tf.float32)
  col_ids = tf.range(num_cols + 1, dtype=tf.int32)
  row_ids = tf.range(num_rows, dtype=tf.int32)
  # Reduced costs of the dummy column are never read (it is always "used").
  padded_cost = tf.pad(cost, [[0, 0], [0, 0], [0, 1]], constant_values=0.0)

  def gather_per_batch(values: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    return tf.gather(values, index, batch_dims=1)

  def insert_row(row: tf.Tensor, row_potential: tf.Tensor,
                 col_potential: tf.Tensor,
                 row_of_col: tf.Tensor) -> tuple[tf.Tensor, ...]:
    row_of_col = tf.where(col_ids[tf.newaxis, :] == dummy, row, row_of_col)

    # Dijkstra-like search from `row` for the cheapest free column.
    def search_cond(done, *unused_state):
      return tf.logical_not(tf.reduce_all(done))

    def search_body(done, current_col, min_slack, predecessor, col_used,
                    row_used, row_potential, col_potential):
      active = tf.logical_not(done)
      current_onehot = tf.equal(col_ids[tf.newaxis, :], current_col[:, None])
      col_used = col_used | (current_onehot & active[:, None])
      current_row = tf.maximum(gather_per_batch(row_of_col, current_col), 0)
      row_used = row_used | (
          tf.equal(row_ids[tf.newaxis, :], current_row[:, None]) &
          active[:, None])
      slack = (
          gather_per_batch(padded_cost, current_row) -
          gather_per_batch(row_potential, current_row)[:, None] -
          col_potential)
      improves = (
          tf.logical_not(col_used) & (slack < min_slack) & active[:, None])
      min_slack = tf.where(improves, slack, min_slack)
      predecessor = tf.where(improves, current_col[:, None], predecessor)
      free_slack = tf.where(col_used, inf, min_slack)
      next_col = tf.argmin(free_slack, axis=1, output_type=tf.int32)
      delta = tf.where(active, tf.reduce_min(free_slack, axis=1), 0.0)
      row_potential += tf.where(row_used, delta[:, None], 0.0)
      col_potential -= tf.where(col_used, delta[:, None], 0.0)
      min_slack = tf.where(col_used, min_slack, min_slack - delta[:, None])
      next_col = tf.where(active, next_col, current_col)
      done = done | (gather_per_batch(row_of_col, next_col) < 0)
      return (done, next_col, min_slack, predecessor, col_used, row_used,
              row_potential, col_potential)

    search_state = (
        tf.zeros([batch_size], tf.bool),
        tf.fill([batch_size], dummy),
        tf.fill([batch_size, num_cols + 1], inf),
        tf.fill([batch_size, num_cols + 1], dummy),
        tf.zeros([batch_size, num_cols + 1], tf.bool),
        tf.zeros([batch_size, num_rows], tf.bool),
        row_potential,
        col_potential,
    )
    (_, free_col, _, predecessor, _, _, row_potential,
     col_potential) = tf.while_loop(
         search_cond, search_body, search_state,
         maximum_iterations=num_cols + 1)

    # Flip the alternating path that ends in `free_col` back to the dummy.
    def augment_cond(current_col, unused_row_of_col):
      return tf.reduce_any(current_col != dummy)

    def augment_body(current_col, row_of_col):
      active = current_col != dummy
      previous_col = gather_per_batch(predecessor, current_col)
      update = (
          tf.equal(col_ids[tf.newaxis, :], current_col[:, None]) &
          active[:, None])
      row_of_col = tf.where(
          update, gather_per_batch(row_of_col, previous_col)[:, None],
          row_of_col)
      current_col = tf.where(active, previous_col, current_col)
      return current_col, row_of_col

    _, row_of_col = tf.while_loop(
        augment_cond, augment_body, (free_col, row_of_col),
        maximum_iterations=num_cols + 1)
    return row_potential, col_potential, row_of_col

  def row_cond(row, *unused_state):
    return row < num_rows

  def row_body(row, row_potential, col_potential, row_of_col):
    row_potential, col_potential, row_of_col = insert_row(
        row, row_potential, col_potential, row_of_col)
    return row + 1, row_potential, col_potential, row_of_col

  initial_state = (
      tf.constant(0, tf.int32),
      tf.zeros([batch_size, num_rows], tf.float32),
      tf.zeros([batch_size, num_cols + 1], tf.float32),
      tf.fill([batch_size, num_cols + 1], -1),
  )
  _, _, _, row_of_col = tf.while_loop(row_cond, row_body, initial_state)
  return row_of_col[:, :num_cols]


# AutoGraph is not needed: the loops are explicit `tf.while_loop`s.
_solve_rows_le_cols_compiled = tf.function(
    _solve_rows_le_cols, jit_compile=True, autograph=False)


def _normalise_cost(cost: tf.Tensor) -> tf.Tensor:
  """Maps each [n, m] matrix (n <= m) to [0, 1] without changing its optimum."""
  cost = cost - tf.reduce_min(cost, axis=2, keepdims=True)
  scale = tf.reduce_max(cost, axis=[1, 2], keepdims=True)
  return tf.where(scale > 0.0, cost / tf.where(scale > 0.0, scale, 1.0), cost)


def hungarian_matching(cost: tf.Tensor) -> tf.Tensor:
  """Finds a minimum-cost assignment for each matrix of a batch.

  Works eagerly, in `tf.function` and in `tf.function(jit_compile=True)`.
  Ties are broken deterministically but not necessarily like scipy.

  Args:
    cost: float [B, R, C] costs with static R and C (R < C, R == C and R > C
      are all allowed). Values must be finite (no inf or NaN); any magnitude
      that float32 can represent is fine.

  Returns:
    bool [B, R, C]: True where row r is assigned to column c. Each matrix has
    exactly min(R, C) True entries, at most one per row and one per column,
    and their total cost is minimal.
  """
  cost = tf.convert_to_tensor(cost)
  if cost.shape.rank != 3:
    raise ValueError(f"cost must have rank 3 [B, R, C], got {cost.shape}.")
  num_rows, num_cols = cost.shape[1], cost.shape[2]
  if num_rows is None or num_cols is None:
    raise ValueError(f"cost needs static R and C, got {cost.shape}.")
  if num_rows == 0 or num_cols == 0:
    return tf.zeros_like(cost, dtype=tf.bool)
  cost = tf.cast(cost, tf.float32)
  transposed = num_rows > num_cols
  if transposed:
    cost = tf.transpose(cost, [0, 2, 1])
  row_of_col = _solve_rows_le_cols_compiled(_normalise_cost(cost))
  assignment = tf.equal(
      row_of_col[:, tf.newaxis, :],
      tf.range(cost.shape[1], dtype=tf.int32)[tf.newaxis, :, tf.newaxis])
  if transposed:
    assignment = tf.transpose(assignment, [0, 2, 1])
  return assignment
