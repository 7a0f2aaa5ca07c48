"""codi: language models that reason in continuous thoughts (CODI, arXiv 2502.21074).

    >>> import codi
    >>> cfg = codi.CODIConfig(base_model="tiny-gpt2", num_latents=3, lora_r=4)
    >>> cm = codi.CODIModel.from_config(cfg)
    >>> out = cm.generate(["Tom has 3 bags of 4 apples. He eats 2. How many are left?"], max_new_tokens=4,
    ...                   return_latents=True)
    >>> out.latents.shape                      # [batch, k, d]: hidden states that produced each thought
    torch.Size([1, 3, 64])
    >>> merged = cm.merge()                    # LoRA folded in; merged.model is a plain HF model

`codi.train`, `codi.evaluate` and `codi.convert` are functions (their modules: `codi.train`, ... in sys.modules;
use `from codi.train import TrainConfig` for anything else they hold).
"""

from codi import (
    data,
    organisms,  # noqa: E402  (after the modules it uses)
)
from codi.batch import CODIBatch, extract_answer
from codi.config import CODIConfig
from codi.convert import convert, official_state_dict
from codi.evaluate import evaluate
from codi.loop import LatentRun, Segment, latent_loop
from codi.merge import MergedCODI
from codi.model import CODIModel
from codi.runner import GenerateOutput, Projection
from codi.train import TrainConfig, TrainRecord, train

__all__ = [
    "CODIConfig", "CODIModel", "MergedCODI", "latent_loop", "LatentRun", "Segment", "CODIBatch", "GenerateOutput",
    "Projection", "convert", "official_state_dict", "extract_answer", "data", "train", "TrainConfig",
    "TrainRecord", "evaluate", "organisms",
]
