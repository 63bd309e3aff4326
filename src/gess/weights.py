"""Where model weights come from: a local directory, or a hub id resolved in the local cache only."""
from __future__ import annotations

import json
from pathlib import Path


def is_hub_id(value: str) -> bool:
    """``owner/name`` that is not a local path: looked up in the Hugging Face cache, never downloaded."""
    text = str(value)
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not Path(text).exists()


def config_model_type(directory: str | Path) -> str | None:
    """The ``model_type`` of a transformers directory's ``config.json`` (None when there is none)."""
    path = Path(directory) / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return config.get("model_type") if isinstance(config, dict) else None
