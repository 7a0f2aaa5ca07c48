"""formats: how codi-lens writes files, once: atomic writes, project temporaries, checksums.

A leaf: it imports nothing of the project, and every writer in the project (activation stores, probe grids,
lenses, CODI checkpoints, training state, reports) goes through it.

    >>> import tempfile, pathlib
    >>> from formats import atomic_write_json, read_json
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.json"
    >>> atomic_write_json(p, {"x": 1})
    >>> read_json(p)
    {'x': 1}
"""

from formats.atomic import (
    TMP_PREFIX,
    atomic_save_safetensors,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    clean_temporaries,
    file_sha256,
    is_temporary,
    read_json,
    staged_folder,
    tmp_name,
    verify_file,
    verify_files,
)

__all__ = ["TMP_PREFIX", "tmp_name", "is_temporary", "clean_temporaries", "atomic_write_bytes", "atomic_write_text",
           "atomic_write_json", "atomic_save_safetensors", "staged_folder", "file_sha256", "verify_file",
           "verify_files", "read_json"]
