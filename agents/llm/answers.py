"""The answer schemas a chat model fills at the end of an agent step or a routing decision."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LibrarianAnswer(BaseModel):
    """The librarian's answer after researching techniques."""

    summary: str = Field(description="One or two sentences on what was found.")
    top_technique: str | None = Field(None, description="Best runnable technique key, if any.")


class DataAnswer(BaseModel):
    """The data engineer's answer after building a dataset."""

    summary: str = Field(description="One or two sentences on the dataset built.")
    dataset_path: str | None = Field(None, description="Path of the dataset, if built.")


class TrainerAnswer(BaseModel):
    """The trainer's answer after a training run."""

    summary: str = Field(description="One or two sentences on the training run.")
    checkpoint: str | None = Field(None, description="Path of the trained checkpoint, if any.")


class EvaluatorAnswer(BaseModel):
    """The evaluator's answer after scoring a checkpoint."""

    summary: str = Field(description="One or two sentences on the evaluation.")
    score: float | None = Field(None, description="Strict score in [0, 1], if evaluated.")


AgentReport = LibrarianAnswer | DataAnswer | TrainerAnswer | EvaluatorAnswer
