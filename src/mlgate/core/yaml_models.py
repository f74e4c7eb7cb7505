"""Loading a YAML file into a pydantic model, with errors that name the file and every bad key path."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from mlgate.core.errors import PolicyError
from mlgate.core.policy import describe_error
from mlgate.core.safe_yaml import load_yaml

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: str | Path, model: type[M], what: str) -> M:
    path = Path(path)
    try:
        return model.model_validate(load_yaml(path, what))
    except ValidationError as exc:
        problems = "\n  ".join(describe_error(e) for e in exc.errors())
        raise PolicyError(f"{path}: invalid {what} ({exc.error_count()} problem(s)):\n  {problems}") from None
