"""Loading a YAML file into a pydantic model, with errors that name the file and every bad key path."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from mlgate.core.errors import PolicyError
from mlgate.core.policy import describe_error

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: str | Path, model: type[M], what: str) -> M:
    path = Path(path)
    try:
        return model.model_validate(yaml.safe_load(path.read_text()))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "\n  ".join(describe_error(e) for e in exc.errors())
        raise PolicyError(f"{path}: invalid {what} ({exc.error_count()} problem(s)):\n  {problems}") from None
