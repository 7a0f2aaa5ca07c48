"""On-disk activation store: every file of a cache folder is written and read here, extras included.

    cache_dir/
      meta.json                model, n_layers, d_model, config_hash, dtype, layers, positions, shard_size, extras,
                               checksums (sha256 of every shard and extras file), n_shards, complete
      samples.jsonl            one JSON object per sample (id, text, label, group, extra columns), in row order
      shard_00000.safetensors  "resid": [n, layer, position, d] (float32, bfloat16 or float16 as stored)
                               "valid": [n, position] bool; shard i holds rows [i*shard_size, (i+1)*shard_size)
      extras_00000.safetensors per-sample arrays of the same rows (CODI runs: latent views, response ids), one
                               tensor per name in meta["extras"]; absent when meta["extras"] is empty

Every file is written through the `formats` leaf (a project temporary, then a rename), so a killed writer leaves
only whole files. A shard counts as written once its checksum (and its extras file's) is in meta.json, which is
rewritten after every shard; `open_writer` on the same folder with the same settings verifies those and resumes at
the first shard that is not. Shards are read back by memory map (`np.memmap` at the tensor's offset in the
safetensors file) and verified against their checksum on first access, so opening a cache costs no copies.

    >>> import tempfile, torch, pandas as pd
    >>> from pathlib import Path
    >>> folder = tempfile.mkdtemp() + "/c"
    >>> samples = pd.DataFrame({"id": ["0", "1", "2"], "text": ["a", "b", "c"]})
    >>> meta = dict(format=FORMAT, layers=[0], positions=["tok_0"], d_model=2, dtype="float32", n_samples=3,
    ...             samples_hash=samples_hash(samples), extras=["ids"])
    >>> w = open_writer(folder, meta, samples, shard_size=2)     # raises if the folder holds another cache
    >>> w.start_row                                               # rows already on disk (the resume point)
    0
    >>> w.add(torch.ones(3, 1, 1, 2), torch.ones(3, 1, dtype=torch.bool), {"ids": torch.arange(3)})
    >>> w.finish()
    >>> sorted(p.name for p in Path(folder).iterdir())
    ['extras_00000.safetensors', 'extras_00001.safetensors', 'meta.json', 'samples.jsonl',
     'shard_00000.safetensors', 'shard_00001.safetensors']
    >>> read_extras(folder, read_meta(folder))["ids"].tolist()
    [0, 1, 2]
"""

from interp.store.files import (
    EXTRAS,
    FORMAT,
    META,
    SAMPLES,
    SHARD,
    SHARD_BYTES,
    VERSION,
    check_folder,
    extras_name,
    read_meta,
    read_samples,
    samples_hash,
    samples_jsonl,
    shard_name,
    shard_rows,
    verify_file,
    write_samples,
)
from interp.store.reader import Part, open_parts, read_extras, to_float32
from interp.store.writer import StoreWriter, open_writer

__all__ = ["FORMAT", "VERSION", "META", "SAMPLES", "SHARD", "EXTRAS", "SHARD_BYTES", "shard_name", "extras_name",
           "shard_rows", "Part", "StoreWriter", "open_writer", "check_folder", "read_meta", "read_samples",
           "write_samples", "open_parts", "read_extras", "samples_hash", "samples_jsonl", "verify_file",
           "to_float32"]
