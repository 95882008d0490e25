"""What the experiment scripts share."""

from __future__ import annotations

import json
from pathlib import Path


def dump_json(obj, path) -> Path:
    """``obj`` as indented JSON at ``path`` (its folder created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")
    return path
