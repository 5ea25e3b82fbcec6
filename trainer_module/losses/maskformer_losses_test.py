"""Tests for the MaskFormer matching and losses.

References: the PyTorch goldens (conftest's `goldens_dir`) and an
independent float64 numpy + scipy re-implementation of the reference
`HungarianMatcher` + `SetCriterion` (below).
"""

import json
import os
from pathlib import Path
import subprocess
import sys
from typing import Any, Optional

import numpy as np
import pytest
from scipy import optimize
from scipy import special
import tensorflow as tf

from trainer_module.losses import maskformer_losses as losses_fn
from trainer_module.losses.maskformer_matcher import match_queries_to_targets

_REPO_ROOT = Path(__file__).resolve().parents[2]
_GOLDEN_CASES = ("basic", "full_queries", "empty_image")
_LOSS_KEYS = ("loss_ce", "loss_mask", "loss_dice")


def _load_golden(goldens_dir: Path, case: str) -> dict[str, Any]:
  """Loads a criterion golden, converted to our NHWC / gt_valid layout."""
  data = np.load(goldens_dir / f"criterion_{case}.npz")
  labels = data["tgt_labels"]
  return {
      "inputs": {
          "class_logits": data["pred_logits"],
          "mask_logits": np.transpose(data["pred_masks_nchw"], [0, 2, 3, 1]),
          "gt_classes": np.maximum(labels, 0),
          "gt_masks": np.transpose(data["tgt_masks_nchw"], [0, 2, 3, 1]),
          "gt_valid": labels >= 0,
      },
      "weights": {
          "no_object_weight": float(data["no_object_weight"]),
          "class_weight": float(data["class_weight"]),
          "mask_weight": float(data["mask_weight"]),
          "dice_weight": float(data["dice_weight"]),
      },
      "losses": {key: float(data[key]) for key in _LOSS_KEYS},
      "matched_query_for_target": data["matched_query_for_target"],
  }


def _reference_criterion(class_logits: np.ndarray,
                         mask_logits: np.ndarray,
                         gt_classes: np.ndarray,
                         gt_masks: np.ndarray,
                         gt_valid: np.ndarray,
                         no_object_weight: float,
                         class_weight: float = 1.0,
                         mask_weight: float = 20.0,
                         dice_weight: float = 1.0,
                         num_masks: Optional[float] = None
                        ) -> tuple[dict[str, float], np.ndarray]:
  """float64 numpy/scipy re-implementation of the reference criterion."""
  batch, num_queries, num_logits = class_logits.shape
  no_object = num_logits - 1
  log_probs = special.log_softmax(class_logits.astype(np.float64), axis=-1)
  matched = np.full(gt_classes.shape, -1)
  ce_sum = ce_weight_sum = focal_sum = dice_sum = 0.0
  for b in range(batch):
    valid = np.flatnonzero(gt_valid[b])
    logits = mask_logits[b].reshape(-1, num_queries).T.astype(np.float64)
    targets = gt_masks[b].reshape(logits.shape[1], -1).T[valid].astype(
        np.float64)
    probs = special.expit(logits)
    pos = 0.25 * (1 - probs)**2 * np.logaddexp(0, -logits)
    neg = 0.75 * probs**2 * np.logaddexp(0, logits)
    focal_cost = (pos @ targets.T + neg @ (1 - targets).T) / logits.shape[1]
    dice_cost = 1 - (2 * probs @ targets.T + 1) / (
        probs.sum(1)[:, None] + targets.sum(1)[None, :] + 1)
    class_cost = -np.exp(log_probs[b][:, gt_classes[b, valid]])
    cost = (class_weight * class_cost + mask_weight * focal_cost +
            dice_weight * dice_cost)
    rows, cols = optimize.linear_sum_assignment(cost)
    matched[b, valid[cols]] = rows
    query_class = np.full(num_queries, no_object)
    query_class[rows] = gt_classes[b, valid[cols]]
    weight = np.where(query_class == no_object, no_object_weight, 1.0)
    ce = -log_probs[b, np.arange(num_queries), query_class]
    ce_sum += (weight * ce).sum()
    ce_weight_sum += weight.sum()
    for query, target in zip(rows, cols):
      x, t, s = logits[query], targets[target], probs[query]
      bce = np.logaddexp(0, x) - x * t
      prob_true = s * t + (1 - s) * (1 - t)
      alpha = 0.25 * t + 0.75 * (1 - t)
      focal_sum += (alpha * (1 - prob_true)**2 * bce).mean()
      dice_sum += 1 - (2 * (s * t).sum() + 1) / (s.sum() + t.sum() + 1)
  if num_masks is None:
    num_masks = max(float(gt_valid.sum()), 1.0)
  return {
      "loss_ce": ce_sum / ce_weight_sum,
      "loss_mask": focal_sum / num_masks,
      "loss_dice": dice_sum / num_masks,
  }, matched


def _random_inputs(seed: int, batch: int, num_queries: int, num_classes: int,
                   height: int, width: int,
                   gt_valid: list[list[bool]]) -> dict[str, np.ndarray]:
  """Random criterion inputs; padding slots hold random junk."""
  rng = np.random.default_rng(seed)
  num_slots = len(gt_valid[0])
  return {
      "class_logits": rng.normal(0, 2, (batch, num_queries, num_classes + 1)
                                ).astype(np.float32),
      "mask_logits": rng.normal(0, 3, (batch, height, width, num_queries)
                               ).astype(np.float32),
      "gt_classes": rng.integers(0, num_classes, (batch, num_slots)
                                ).astype(np.int32),
      "gt_masks": (rng.uniform(size=(batch, height, width, num_slots)) <
                   0.4).astype(np.uint8),
      "gt_valid": np.array(gt_valid, bool),
  }


def _run(inputs: dict[str, np.ndarray], jit: bool = False,
         **kwargs: Any) -> dict[str, np.ndarray]:
  """Runs maskformer_losses and the matcher, returns numpy values.

  The matcher sees the targets (and pixel_valid) subsampled to the
  predictions' resolution, as maskformer_losses matches.
  """

  def compute(tensors):
    losses = losses_fn(**tensors, **kwargs)
    matching_kwargs = {
        key: value for key, value in kwargs.items()
        if key not in ("no_object_weight", "static_shapes")
    }
    stride = tensors["gt_masks"].shape[1] // tensors["mask_logits"].shape[1]
    matching_inputs = {
        key: value for key, value in tensors.items() if key != "pixel_valid"
    }
    matching_masks = tensors["gt_masks"][:, ::stride, ::stride]
    if matching_masks.shape.rank == 3:  # A slot map.
      matching_masks = tf.one_hot(matching_masks,
                                  tensors["gt_classes"].shape[1])
    matching_inputs["gt_masks"] = matching_masks
    pixel_valid = tensors.get("pixel_valid")
    if pixel_valid is not None:
      pixel_valid = pixel_valid[:, ::stride, ::stride]
    losses["matched"] = match_queries_to_targets(
        **matching_inputs, pixel_valid=pixel_valid, **matching_kwargs)
    return losses

  if jit:
    compute = tf.function(compute, jit_compile=True)
  tensors = {key: tf.constant(value) for key, value in inputs.items()}
  return {key: value.numpy() for key, value in compute(tensors).items()}


@pytest.mark.parametrize("case", _GOLDEN_CASES)
def test_numpy_reference_reproduces_goldens(goldens_dir: Path,
                                           case: str) -> None:
  golden = _load_golden(goldens_dir, case)
  losses, matched = _reference_criterion(**golden["inputs"],
                                         **golden["weights"])
  for key in _LOSS_KEYS:
    np.testing.assert_allclose(losses[key], golden["losses"][key], rtol=1e-6)
  np.testing.assert_array_equal(matched, golden["matched_query_for_target"])


@pytest.mark.parametrize("case", _GOLDEN_CASES)
@pytest.mark.parametrize("jit", [False, True])
def test_reproduces_goldens(goldens_dir: Path, case: str, jit: bool) -> None:
  golden = _load_golden(goldens_dir, case)
  result = _run(golden["inputs"], jit=jit, **golden["weights"])
  for key in _LOSS_KEYS:
    assert result[key].dtype == np.float32
    assert result[key].shape == ()
    np.testing.assert_allclose(result[key], golden["losses"][key], rtol=1e-4)
  np.testing.assert_array_equal(result["matched"],
                                golden["matched_query_for_target"])


def test_padding_slot_contents_are_ignored(goldens_dir: Path) -> None:
  golden = _load_golden(goldens_dir, "basic")
  inputs = dict(golden["inputs"])
  rng = np.random.default_rng(0)
  padding = ~inputs["gt_valid"]
  inputs["gt_classes"] = np.where(
      padding, rng.integers(0, 133, padding.shape), inputs["gt_classes"])
  junk_masks = rng.integers(0, 2, inputs["gt_masks"].shape)
  inputs["gt_masks"] = np.where(padding[:, None, None, :], junk_masks,
                                inputs["gt_masks"]).astype(np.uint8)
  result = _run(inputs, jit=True, **golden["weights"])
  for key in _LOSS_KEYS:
    np.testing.assert_allclose(result[key], golden["losses"][key], rtol=1e-4)
  np.testing.assert_array_equal(result["matched"],
                                golden["matched_query_for_target"])


def test_padded_pixels_do_not_change_losses(goldens_dir: Path) -> None:
  golden = _load_golden(goldens_dir, "basic")
  unpadded = golden["inputs"]
  batch, height, width, _ = unpadded["mask_logits"].shape
  pad = [[0, 0], [0, 5], [0, 3], [0, 0]]
  rng = np.random.default_rng(1)
  padded = dict(unpadded)
  padded["mask_logits"] = np.pad(unpadded["mask_logits"], pad)
  padded["mask_logits"][:, height:] = rng.normal(
      0, 5, padded["mask_logits"][:, height:].shape)
  padded["mask_logits"][:, :, width:] = rng.normal(
      0, 5, padded["mask_logits"][:, :, width:].shape)
  # Targets in the padded area are ignored too, even when set.
  padded["gt_masks"] = np.pad(unpadded["gt_masks"], pad, constant_values=1)
  padded["pixel_valid"] = np.pad(
      np.ones((batch, height, width), np.float32), pad[:3])
  expected = _run(unpadded, **golden["weights"])
  for jit in (False, True):
    result = _run(padded, jit=jit, **golden["weights"])
    for key in _LOSS_KEYS:
      np.testing.assert_allclose(result[key], expected[key], rtol=1e-5)
    np.testing.assert_array_equal(result["matched"], expected["matched"])


@pytest.mark.parametrize(
    "num_queries,gt_valid",
    [
        (6, [[True, False, True, True], [False, True, False, True]]),
        # More targets than queries: only 3 of image 0's 5 targets matched.
        (3, [[True] * 5, [True, False, True, False, False]]),
    ])
def test_matches_numpy_reference(num_queries: int,
                                 gt_valid: list[list[bool]]) -> None:
  inputs = _random_inputs(
      seed=num_queries, batch=2, num_queries=num_queries, num_classes=4,
      height=6, width=5, gt_valid=gt_valid)
  weights = {"no_object_weight": 0.3, "class_weight": 2.0,
             "mask_weight": 5.0, "dice_weight": 1.5}
  expected, expected_matched = _reference_criterion(**inputs, **weights)
  result = _run(inputs, jit=True, **weights)
  for key in _LOSS_KEYS:
    np.testing.assert_allclose(result[key], expected[key], rtol=1e-5)
  np.testing.assert_array_equal(result["matched"], expected_matched)


def test_image_without_targets() -> None:
  inputs = _random_inputs(
      seed=3, batch=1, num_queries=5, num_classes=3, height=4, width=4,
      gt_valid=[[False, False]])
  result = _run(inputs, jit=True, no_object_weight=0.1)
  assert result["loss_mask"] == 0.0
  assert result["loss_dice"] == 0.0
  no_object_ce = -special.log_softmax(
      inputs["class_logits"][0].astype(np.float64), axis=-1)[:, -1]
  np.testing.assert_allclose(result["loss_ce"], no_object_ce.mean(),
                             rtol=1e-5)
  np.testing.assert_array_equal(result["matched"], [[-1, -1]])


def test_gradients_flow_and_are_finite(goldens_dir: Path) -> None:
  golden = _load_golden(goldens_dir, "basic")
  tensors = {
      key: tf.constant(value) for key, value in golden["inputs"].items()
  }

  @tf.function(jit_compile=True)
  def total_loss_and_gradients(class_logits, mask_logits):
    with tf.GradientTape() as tape:
      tape.watch([class_logits, mask_logits])
      losses = losses_fn(
          class_logits, mask_logits, tensors["gt_classes"],
          tensors["gt_masks"], tensors["gt_valid"], no_object_weight=0.1)
      total = (losses["loss_ce"] + 20.0 * losses["loss_mask"] +
               losses["loss_dice"])
    return tape.gradient(total, [class_logits, mask_logits])

  class_grad, mask_grad = total_loss_and_gradients(tensors["class_logits"],
                                                   tensors["mask_logits"])
  for grad in (class_grad.numpy(), mask_grad.numpy()):
    assert np.all(np.isfinite(grad))
    assert np.abs(grad).sum() > 0
  # Only matched queries receive mask gradients.
  matched = golden["matched_query_for_target"]
  mask_grad_per_query = np.abs(mask_grad.numpy()).sum(axis=(1, 2))
  for b in range(matched.shape[0]):
    has_grad = mask_grad_per_query[b] > 0
    np.testing.assert_array_equal(
        np.flatnonzero(has_grad), np.sort(matched[b][matched[b] >= 0]))


def test_bfloat16_inputs_give_float32_outputs(goldens_dir: Path) -> None:
  golden = _load_golden(goldens_dir, "basic")
  inputs = {
      key: tf.constant(value) for key, value in golden["inputs"].items()
  }
  for key in ("class_logits", "mask_logits"):
    inputs[key] = tf.cast(inputs[key], tf.bfloat16)
  losses = tf.function(losses_fn, jit_compile=True)(
      **inputs, **golden["weights"])
  for key in _LOSS_KEYS:
    assert losses[key].dtype == tf.float32
    np.testing.assert_allclose(losses[key].numpy(), golden["losses"][key],
                               rtol=2e-2)


_DISTRIBUTED_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from trainer_module.losses import maskformer_losses
inputs = dict(np.load(sys.argv[1]))
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
per_replica = strategy.experimental_distribute_values_from_function(
    lambda context: {key: tf.constant(value[context.replica_id_in_sync_group:]
                                      [:1]) for key, value in inputs.items()})
losses = strategy.run(
    tf.function(lambda x: maskformer_losses(**x, no_object_weight=0.1)),
    args=(per_replica,))
print(json.dumps({key: [float(v) for v in strategy.experimental_local_results(
    value)] for key, value in losses.items()}))
"""


def test_num_masks_is_averaged_over_replicas(tmp_path: Path) -> None:
  inputs = _random_inputs(
      seed=4, batch=2, num_queries=5, num_classes=3, height=4, width=4,
      gt_valid=[[True, True, True], [False, True, False]])
  inputs_path = tmp_path / "inputs.npz"
  np.savez(inputs_path, **inputs)
  env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=os.pathsep.join(
                 [str(_REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
  completed = subprocess.run(
      [sys.executable, "-c", _DISTRIBUTED_SCRIPT, str(inputs_path)],
      env=env, capture_output=True, text=True, timeout=300, check=False)
  assert completed.returncode == 0, completed.stderr[-3000:]
  per_replica = json.loads(completed.stdout.strip().splitlines()[-1])
  # 4 targets over 2 replicas: each replica divides by 4 / 2 = 2.
  for replica in range(2):
    replica_inputs = {
        key: value[replica:replica + 1] for key, value in inputs.items()
    }
    expected, _ = _reference_criterion(
        **replica_inputs, no_object_weight=0.1, num_masks=2.0)
    for key in _LOSS_KEYS:
      np.testing.assert_allclose(per_replica[key][replica], expected[key],
                                 rtol=1e-5)


# Targets at a higher resolution than the predictions (the reference's
# training setting): goldens from the original SetCriterion.
_RES_CASES = ("case_128_q20_k8", "case_96_q10_k12")
_RES_OUTPUTS = (("", ""), ("aux_0_", "_0"), ("aux_1_", "_1"))


def _load_res_golden(goldens_dir: Path, case: str) -> Any:
  return np.load(goldens_dir / "criterion_res" / f"{case}.npz")


@pytest.mark.parametrize("case", _RES_CASES)
@pytest.mark.parametrize("static_shapes,jit", [(False, False), (True, False),
                                               (True, True)])
def test_full_resolution_targets_reproduce_goldens(goldens_dir: Path,
                                                   case: str,
                                                   static_shapes: bool,
                                                   jit: bool) -> None:
  golden = _load_res_golden(goldens_dir, case)
  gt_classes = golden["tgt_labels"][np.newaxis].astype(np.int32)
  targets = {
      "gt_classes": gt_classes,
      "gt_masks": np.transpose(golden["tgt_masks_nchw"], [0, 2, 3, 1]),
      "gt_valid": np.ones(gt_classes.shape, bool),
  }
  no_object_weight = float(golden["no_object_weight"])
  for prefix, suffix in _RES_OUTPUTS:
    inputs = dict(
        targets, class_logits=golden[prefix + "pred_logits"],
        mask_logits=np.transpose(golden[prefix + "pred_masks_nchw"],
                                 [0, 2, 3, 1]))
    assert (inputs["gt_masks"].shape[1] ==
            4 * inputs["mask_logits"].shape[1])
    result = _run(inputs, jit=jit, no_object_weight=no_object_weight,
                  static_shapes=static_shapes)
    for key in _LOSS_KEYS:
      np.testing.assert_allclose(result[key], golden[key + suffix],
                                 rtol=1e-4, err_msg=f"{key}{suffix}")
    output = "final" if not prefix else prefix.rstrip("_")
    expected = np.full(gt_classes.shape[1], -1)
    expected[golden[f"match_{output}_tgt"]] = golden[f"match_{output}_src"]
    np.testing.assert_array_equal(result["matched"][0], expected)


def _random_full_resolution_inputs(seed: int) -> dict[str, np.ndarray]:
  """Predictions at 6×5, targets at 24×20 (stride 4) with padded pixels."""
  inputs = _random_inputs(
      seed=seed, batch=2, num_queries=6, num_classes=4, height=6, width=5,
      gt_valid=[[True, False, True, True], [False, True, False, True]])
  rng = np.random.default_rng(seed)
  inputs["gt_masks"] = (rng.uniform(size=(2, 24, 20, 4)) < 0.4).astype(bool)
  pixel_valid = np.zeros((2, 24, 20), np.int32)
  pixel_valid[0, :21, :20] = 1
  pixel_valid[1, :24, :13] = 1
  inputs["pixel_valid"] = pixel_valid
  return inputs


def test_static_and_dynamic_pairs_agree_with_gradients() -> None:
  inputs = _random_full_resolution_inputs(seed=5)
  tensors = {key: tf.constant(value) for key, value in inputs.items()}

  def losses_and_gradients(static_shapes):
    with tf.GradientTape() as tape:
      tape.watch(tensors["mask_logits"])
      losses = losses_fn(**tensors, no_object_weight=0.1,
                         static_shapes=static_shapes)
      total = losses["loss_mask"] + losses["loss_dice"]
    return losses, tape.gradient(total, tensors["mask_logits"])

  static_losses, static_grad = tf.function(
      lambda: losses_and_gradients(True), jit_compile=True)()
  dynamic_losses, dynamic_grad = tf.function(
      lambda: losses_and_gradients(False))()
  for key in _LOSS_KEYS:
    np.testing.assert_allclose(static_losses[key], dynamic_losses[key],
                               rtol=1e-5)
  assert np.abs(dynamic_grad.numpy()).sum() > 0
  np.testing.assert_allclose(static_grad, dynamic_grad, rtol=1e-4,
                             atol=1e-7)


def test_padded_pixels_are_excluded_at_full_resolution() -> None:
  inputs = _random_full_resolution_inputs(seed=6)
  expected = _run(inputs, no_object_weight=0.1)
  changed = dict(inputs)
  rng = np.random.default_rng(7)
  padding = inputs["pixel_valid"] == 0
  # Junk targets on padded pixels and junk logits on fully padded cells
  # (whose upsampled values reach padded pixels only).
  changed["gt_masks"] = np.where(padding[..., None],
                                 rng.uniform(size=inputs["gt_masks"].shape)
                                 < 0.5, inputs["gt_masks"])
  cell_padded = padding[:, ::4, ::4] & padding[:, 3::4, 3::4]
  changed["mask_logits"] = np.where(
      cell_padded[..., None],
      rng.normal(0, 5, inputs["mask_logits"].shape).astype(np.float32),
      inputs["mask_logits"])
  result = _run(changed, jit=True, no_object_weight=0.1)
  np.testing.assert_array_equal(result["matched"], expected["matched"])
  for key in _LOSS_KEYS:
    np.testing.assert_allclose(result[key], expected[key], rtol=1e-5)
  # Padding changes the losses once it is counted.
  unmasked = dict(changed)
  del unmasked["pixel_valid"]
  assert not np.isclose(_run(unmasked, no_object_weight=0.1)["loss_mask"],
                        expected["loss_mask"], rtol=1e-3)


def test_target_size_must_be_a_multiple_of_the_prediction_size() -> None:
  inputs = _random_full_resolution_inputs(seed=8)
  inputs["gt_masks"] = inputs["gt_masks"][:, :22]
  del inputs["pixel_valid"]
  with pytest.raises(ValueError, match="integer multiple"):
    _run(inputs, no_object_weight=0.1)


@pytest.mark.parametrize("static_shapes,jit", [(False, False), (True, True)])
def test_slot_map_targets_equal_dense_masks(static_shapes: bool,
                                            jit: bool) -> None:
  inputs = _random_full_resolution_inputs(seed=9)
  rng = np.random.default_rng(9)
  slot_map = rng.integers(-1, 4, size=(2, 24, 20)).astype(np.int32)
  dense = dict(inputs, gt_masks=np.stack(
      [slot_map == j for j in range(4)], axis=-1))
  expected = _run(dense, jit=jit, no_object_weight=0.1,
                  static_shapes=static_shapes)
  result = _run(dict(inputs, gt_masks=slot_map), jit=jit,
                no_object_weight=0.1, static_shapes=static_shapes)
  np.testing.assert_array_equal(result["matched"], expected["matched"])
  for key in _LOSS_KEYS:
    np.testing.assert_allclose(result[key], expected[key], rtol=1e-6)


def test_reproduces_the_original_model_criterion_on_real_targets(
    reference_forward_dir: Path) -> None:
  """The original model's outputs and a real COCO image's 17 segments
  (`goldens/reference_forward`: predictions 32², targets 128²)."""
  directory = reference_forward_dir
  forward = np.load(directory / "forward.npz")
  criterion = np.load(directory / "criterion.npz")
  labels = criterion["target_labels"][np.newaxis].astype(np.int32)
  targets = {
      "gt_classes": labels,
      "gt_masks": np.transpose(criterion["target_masks"], [1, 2, 0])[None],
      "gt_valid": np.ones(labels.shape, bool),
  }
  for prefix, suffix in _RES_OUTPUTS:
    inputs = dict(
        targets, class_logits=forward[prefix + "pred_logits"],
        mask_logits=np.transpose(forward[prefix + "pred_masks"],
                                 [0, 2, 3, 1]))
    result = _run(inputs, no_object_weight=0.1)
    for key in _LOSS_KEYS:
      np.testing.assert_allclose(result[key], criterion[key + suffix],
                                 rtol=1e-4, err_msg=f"{key}{suffix}")
    output = "final" if not prefix else prefix.rstrip("_")
    expected = np.full(labels.shape[1], -1)
    expected[criterion[f"match_{output}_tgt"]] = criterion[
        f"match_{output}_src"]
    np.testing.assert_array_equal(result["matched"][0], expected)
