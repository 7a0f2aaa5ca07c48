"""Shared inputs of the store tests: the texts of the 3-shard reference store, and a hand edit of meta.json."""

from __future__ import annotations

import json

TEXTS = [f"Sample {i}: " + " ".join(f"w{(i * 5 + j) % 11}" for j in range(i % 4 + 2)) for i in range(12)]


def edit_meta(folder, **changes):
    """Change keys of a store's meta.json by hand (as a user editing the file would)."""
    meta = json.loads((folder / "meta.json").read_text())
    meta.update(changes)
    (folder / "meta.json").write_text(json.dumps(meta))
