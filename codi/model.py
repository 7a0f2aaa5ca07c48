"""`CODIModel`: base causal LM + LoRA (peft) + projection `prj` + <bot>/<eot> rows, and the CODI losses.

    >>> import codi
    >>> cfg = codi.CODIConfig(base_model="tiny-gpt2", num_latents=3, lora_r=4)
    >>> cm = codi.CODIModel.from_config(cfg)
    >>> batch = cm.make_batch([dict(question="Tom has 3 apples. He buys 2. How many?", cot="<<3+2=5>>", answer="5")])
    >>> parts = cm.loss(batch)
    >>> sorted(parts)
    ['distill', 'latent_distill', 'student_ce', 'teacher_ce', 'total']

One training step runs the teacher ONCE (its hidden states are the detached distillation targets and its logits
give the teacher CE, from the same pass) and the student loop once: k + 3 forward calls of the base model for
k latents. The official code runs the teacher twice (once under no_grad for targets, once with grad for its CE).

<bot> and <eot> are two rows of a separate [2, d] parameter `special`, fed as input embeddings; they are not added
to the vocabulary, so the base keeps its embedding matrix and LM head (merged models stay plain HF models).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from argcheck import BadArgument
from codi.batch import IGNORE, CODIBatch, make_batch
from codi.config import CODIConfig, lora_targets_for
from codi.loop import position_ids
from codi.runner import CODIRunner, Projection

__all__ = ["CODIModel"]


def _vocab_rows(model) -> int:
    return int(model.get_input_embeddings().weight.shape[0])


def check_base(cfg: CODIConfig, model_type: str, n_layers: int, d_model: int, vocab: int) -> None:
    """Raise when `cfg` was made for a base of another architecture or shape (another base model)."""
    want = dict(base_model_type=model_type, base_n_layers=n_layers, base_d_model=d_model, base_vocab_size=vocab)
    have = {k: getattr(cfg, k) for k in want}
    bad = {k: (have[k], want[k]) for k in want if have[k] is not None and have[k] != want[k]}
    if bad:
        rows = ", ".join(f"{k}: config {a} vs base {b}" for k, (a, b) in bad.items())
        raise ValueError(f"this CODI config was made for another base model than {cfg.base_model!r} "
                         f"({rows}). Load it with the base it was trained on.")


class CODIModel(CODIRunner):
    """A CODI model you can train, run, save and merge. Build with `from_config` or `from_pretrained`.

    >>> import tempfile
    >>> cm = CODIModel.from_config(CODIConfig("tiny-llama", num_latents=2, lora_r=4))
    >>> cm.n_layers, cm.d_model, cm.vocab_size, tuple(cm.special.shape)     # <bot>/<eot>: rows of `special`
    (2, 64, 512, (2, 64))
    >>> sorted({n.split(".")[0] for n in cm.trainable_parameters()})      # LoRA (inside model), prj, special
    ['model', 'prj', 'special']
    >>> back = CODIModel.from_pretrained(cm.save_pretrained(tempfile.mkdtemp() + "/ckpt"))
    >>> back.generate(["1 + 2 = ?"], max_new_tokens=3).texts == cm.generate(["1 + 2 = ?"], max_new_tokens=3).texts
    True
    """

    def __init__(self, model: nn.Module, prj: nn.Module, special: Tensor, tokenizer, config: CODIConfig,
                 base_path: Path | None = None):
        super().__init__()
        self.model = model
        self.prj = prj
        self.special = nn.Parameter(special, requires_grad=config.train_special_rows)
        self.tokenizer = tokenizer
        self.config = config
        self.base_path = base_path

    # ---------------------------------------------------------------- building
    @classmethod
    def from_config(cls, cfg: CODIConfig, device: str | torch.device | None = None,
                    dtype: str | torch.dtype | None = None, weights: str | os.PathLike | None = None) -> CODIModel:
        """Load the base with `interp.load_model(cfg.base_model)`, add fresh LoRA, prj and <bot>/<eot> rows.

        The random parts are drawn from `cfg.seed`, so the same config gives the same model. `weights`: load the
        base from this folder instead of `cfg.base_model` (the name stays in the config; used for checkpoints that
        carry their whole base, `finetune="full"`). With `finetune="full"` no LoRA is added and every base weight
        trains.

        >>> cm = CODIModel.from_config(CODIConfig("tiny-llama", lora_r=4))
        >>> cm.config.lora_target_modules
        ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']
        """
        from peft import LoraConfig, get_peft_model
        from transformers.pytorch_utils import Conv1D

        from basemodels import load_model

        if not isinstance(cfg, CODIConfig):
            raise BadArgument("cfg", cfg, "must be a CODIConfig", "pass CODIConfig(base_model='smollm2-135m', ...)")
        cfg.validate()
        base = load_model(weights or cfg.base_model, dtype=dtype, device=device)
        hf = base.model
        vocab = _vocab_rows(hf)
        model_type = str(getattr(hf.config, "model_type", "?"))
        check_base(cfg, model_type, base.n_layers, base.d_model, vocab)
        found = lora_targets_for(hf)
        targets = list(cfg.lora_target_modules or found)
        targets = [t for t in found if t in targets] + [t for t in targets if t not in found]  # model order
        cfg = dataclasses.replace(cfg, lora_target_modules=targets, prj_dim=cfg.prj_dim or base.d_model,
                                  base_model_type=model_type, base_n_layers=base.n_layers,
                                  base_d_model=base.d_model, base_vocab_size=vocab)
        cfg.layers_to_distill(base.n_layers)  # fail now, not at the first step
        conv1d = any(isinstance(m, Conv1D) and n.rsplit(".", 1)[-1] in targets for n, m in hf.named_modules())
        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=targets, task_type="CAUSAL_LM", fan_in_fan_out=conv1d,
                          init_lora_weights=True)
        if cfg.finetune == "full":
            cfg = dataclasses.replace(cfg, lora_target_modules=None)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            with warnings.catch_warnings():
                # peft 0.21.2 reads `model.is_gradient_checkpointing`, which transformers 5.23 deprecates with a
                # FutureWarning (renamed is_activation_checkpointing); nothing for a user to do, so not shown.
                warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated",
                                        category=FutureWarning)
                peft_model = get_peft_model(hf, lora) if cfg.finetune == "lora" else hf.requires_grad_(True)
            prj = Projection(base.d_model, cfg.prj_dim, cfg.prj_layer_norm, cfg.prj_dropout)
            embed = hf.get_input_embeddings()  # statistics of embedded tokens (includes any scaling, e.g. Gemma)
            with torch.no_grad():
                emb = embed(torch.arange(min(vocab, 8192), device=embed.weight.device)).float()
            special = emb.mean(0).cpu() + emb.std(0).cpu() * torch.randn(2, base.d_model)  # CPU RNG: same everywhere
        dev, dt = emb.device, embed.weight.dtype
        prj.to(dev, dt)
        cm = cls(peft_model, prj, special.to(dev, dt), base.tokenizer, cfg, Path(weights) if weights else base.path)
        if not cfg.use_prj:
            cm.prj.requires_grad_(False)
        cm.eval()
        return cm

    # ---------------------------------------------------------------- data + losses
    def make_batch(self, problems: list) -> CODIBatch:
        """Tokenise problems (codi.data.Problem or dicts with question, cot, answer); tensors on this device."""
        return make_batch(self.tokenizer, self.config, problems).to(self.device)

    def forward(self, batch: CODIBatch) -> dict[str, Tensor]:
        """Same as `loss(batch)`, so wrappers (accelerate / DDP) that call the module work."""
        return self.loss(batch)

    def teacher_forward(self, batch: CODIBatch):
        """One teacher pass over question + CoT + answer (HF output with hidden_states)."""
        return self.model(input_ids=batch.teacher_ids, attention_mask=batch.teacher_mask,
                          position_ids=position_ids(batch.teacher_mask, batch.teacher_ids.shape[1]),
                          output_hidden_states=True, use_cache=False)

    def loss(self, batch: CODIBatch) -> dict[str, Tensor]:
        """CODI loss parts: total (with grad), teacher_ce, student_ce, distill, latent_distill (detached, unweighted).

        total = teacher_ce_weight * teacher_ce + student_ce_weight * student_ce + distill_weight * distill, where
        distill = mean over distilled layers of loss(student h, teacher h.detach()) at the token before the answer,
        each divided by the teacher's std there (squared for mse) when `distill_div_std`; with
        `latent_distill_weight > 0`, total also adds latent_distill_weight * latent_distill, the same loss at every
        thought against the teacher's written CoT token in that place (see `CODIConfig`).
        """
        cfg = self.config
        batch = batch.to(self.device)
        teacher = self.teacher_forward(batch)
        v = teacher.logits.shape[-1]
        teacher_ce = F.cross_entropy(teacher.logits[:, :-1].reshape(-1, v).float(),
                                     batch.teacher_labels[:, 1:].reshape(-1), ignore_index=IGNORE)
        run = self.run_ids(batch.prompt_ids, batch.prompt_mask, batch.response_ids, batch.response_mask,
                           keep_hidden_states=True)
        labels = batch.response_ids.masked_fill(batch.response_mask == 0, IGNORE)
        student_ce = F.cross_entropy(run.logits.reshape(-1, run.logits.shape[-1]).float(), labels.reshape(-1),
                                     ignore_index=IGNORE)
        student_hidden = run.hidden_states[-1]  # the <eot> + response call
        rows = torch.arange(len(batch), device=self.device)
        parts = []
        for layer in cfg.layers_to_distill(self.n_layers):
            s = student_hidden[layer][rows, batch.student_pos].float()
            t = teacher.hidden_states[layer][rows, batch.teacher_pos].detach().float()
            part = self._distill_fn(s, t)
            if cfg.distill_div_std:
                std = t.std()
                part = part / (std * std if cfg.loss_type == "mse" else std)
            parts.append(part)
        distill = torch.stack(parts).mean()
        total = cfg.teacher_ce_weight * teacher_ce + cfg.student_ce_weight * student_ce + cfg.distill_weight * distill
        latent = self._latent_distill(batch, teacher, run) if cfg.latent_distill_weight > 0 else distill.new_zeros(())
        total = total + cfg.latent_distill_weight * latent
        return dict(total=total, teacher_ce=teacher_ce.detach(), student_ce=student_ce.detach(),
                    distill=distill.detach(), latent_distill=latent.detach())

    def _latent_distill(self, batch: CODIBatch, teacher, run) -> Tensor:
        """Mean distillation loss of the student's hidden states at thought j onto the teacher's at CoT token j
        (the token after the CoT's first one), over thoughts and distilled layers."""
        k = self.config.num_latents
        start, length = batch.teacher_cot[:, 0], batch.teacher_cot[:, 1]
        if bool((length != k + 2).any()):
            bad = batch.ids[int((length != k + 2).nonzero()[0])]
            raise ValueError(f"latent_distill_weight > 0 needs every teacher CoT to be num_latents + 2 = {k + 2} "
                             f"tokens (first, one per thought, last); problem {bad!r} has "
                             f"{int(length[(length != k + 2).nonzero()[0]])}. Use a one-token-per-step CoT and "
                             f"num_latents = number of written steps, or latent_distill_weight=0.")
        rows = torch.arange(len(batch), device=self.device)
        parts = []
        for j in range(k):
            student = run.hidden_states[1 + j]  # call 0 is the prompt, calls 1..k the thoughts
            for layer in self.config.layers_to_distill(self.n_layers):
                t = teacher.hidden_states[layer][rows, start + 1 + j].detach().float()
                part = self._distill_fn(student[layer][:, 0].float(), t)
                if self.config.distill_div_std:
                    std = t.std()
                    part = part / (std * std if self.config.loss_type == "mse" else std)
                parts.append(part)
        return torch.stack(parts).mean()

    def _distill_fn(self, s: Tensor, t: Tensor) -> Tensor:
        if self.config.loss_type == "smooth_l1":
            return F.smooth_l1_loss(s, t)
        if self.config.loss_type == "l1":
            return F.l1_loss(s, t)
        return F.mse_loss(s, t)

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """Parameters that train: LoRA A/B (or every base weight with finetune="full"), prj (if used), <bot>/<eot>
        rows (if `train_special_rows`)."""
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    # ---------------------------------------------------------------- checkpoints and merge
    def save_pretrained(self, folder: str | os.PathLike, extra_files: dict[str, str | bytes] | None = None) -> Path:
        """Write a self-describing checkpoint folder atomically (see `codi.checkpoint`)."""
        from codi.checkpoint import save_checkpoint

        return save_checkpoint(self, folder, extra_files)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, device: str | torch.device | None = None,
                        dtype: str | torch.dtype | None = None) -> CODIModel:
        """Load a folder written by `save_pretrained`, with strict key and shape checks."""
        from codi.checkpoint import load_checkpoint

        return load_checkpoint(cls, folder, device=device, dtype=dtype)

    def merge(self):
        """A `MergedCODI`: LoRA folded into a copy of the base weights; `.model` is a plain HF model."""
        from codi.merge import merge

        return merge(self)

    def __repr__(self) -> str:
        c = self.config
        return (f"CODIModel(base={c.base_model!r}, num_latents={c.num_latents}, n_layers={c.base_n_layers}, "
                f"d_model={c.base_d_model}, lora_r={c.lora_r}, dtype={self.dtype})")
