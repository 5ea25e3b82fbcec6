"""The drift line of a run's terminal summary."""

from typing import Dict, List

from tfx.types.artifact import Artifact

from tfx_pipeline.drift import validator


def summary_line(report: Dict) -> str:
  """One line: no drift, no baseline, or drift allowed (with its message)."""
  if report['baseline_statistics'] is None:
    if report['baseline_model'] is None:
      return 'Drift: no baseline (first blessed model not yet trained)'
    return (f"Drift: no baseline (the blessed model {report['baseline_model']}"
            ' holds no training statistics)')
  if report['drifted']:
    return f"Drift: ALLOWED (--allow-drift): {report['message']}"
  return f"Drift: none against {report['baseline_model']}"


def describe_drift(outputs: Dict[str, Dict[str, List[Artifact]]]
                   ) -> List[str]:
  """[the drift line] of a run's DriftValidator outputs; [] without one."""
  drift = outputs.get('DriftValidator', {}).get('drift', [])
  return [summary_line(validator.read_json(drift[0].uri))] if drift else []
