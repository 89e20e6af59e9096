"""An external test judge: a command in the PostTrainBench evaluator contract.

The command is called with a model folder and writes `{"accuracy": a, "stderr": s}` (stderr and
`n` optional) to a JSON file; the lab never reads the judge's data. Placeholders `{model}`,
`{limit}` and `{out}` are filled when the command names them; a command that names none gets
`--model-path M --json-output-file F` (and `--limit N` when a limit is set) appended, as
PostTrainBench's evaluate.py scripts take them.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from postlab.tools.evaluation.scoring import EvaluationError

# How long a judge may take on one checkpoint before it counts as failed.
EXTERNAL_TIMEOUT_S = 3600
PLACEHOLDERS = ("{model}", "{limit}", "{out}")


class ExternalScore(BaseModel):
    """What a judge reported for one checkpoint."""

    accuracy: float = Field(ge=0, le=1)
    stderr: float | None = Field(None, ge=0)
    n: int | None = Field(None, ge=0)


def judge_argv(command: str, model_path: str, output: Path, limit: int | None) -> list[str]:
    """The judge's argument vector for one checkpoint (placeholders filled, or flags appended)."""
    if any(mark in command for mark in PLACEHOLDERS):
        if "{limit}" in command and limit is None:
            raise EvaluationError("the evaluation command names {limit} but no limit is set")
        words = shlex.split(command)
        values = {"model": model_path, "out": str(output), "limit": str(limit)}
        return [word.format(**values) for word in words]
    argv = [*shlex.split(command), "--model-path", model_path, "--json-output-file", str(output)]
    return argv + (["--limit", str(limit)] if limit is not None else [])


def run_external_evaluation(
    command: str, model_path: str, limit: int | None = None, timeout_s: float = EXTERNAL_TIMEOUT_S
) -> ExternalScore:
    """Run the judge on a checkpoint and read its score; EvaluationError says what went wrong."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "metrics.json"
        try:
            argv = judge_argv(command, model_path, output, limit)
        except (ValueError, KeyError, IndexError) as error:
            raise EvaluationError(f"evaluation command cannot be formatted: {error}") from error
        try:
            completed = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise EvaluationError(f"evaluation command failed to run: {error}") from error
        if completed.returncode != 0:
            tail = (completed.stderr or completed.stdout)[-800:]
            raise EvaluationError(f"evaluation command exited {completed.returncode}: {tail}")
        try:
            return ExternalScore.model_validate_json(output.read_text())
        except (OSError, ValidationError, json.JSONDecodeError) as error:
            raise EvaluationError(
                f"evaluation command wrote no valid metrics JSON ({{'accuracy': 0..1}}): {error}"
            ) from error
