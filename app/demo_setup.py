"""The sizes of `codi-lens demo` and its CODI model: given, shipped with the project, or trained now.

    >>> from app.demo_setup import DemoSize, shipped_checkpoint
    >>> DemoSize.quick().n_deception
    48
    >>> shipped_checkpoint("smollm2-135m").name
    'smollm2-135m-arith'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SEEDS", "DemoSize", "shipped_checkpoint", "get_codi_model"]

# distinct generator seeds: no shared problems
SEEDS = {"train": 0, "eval": 7, "deception": 1, "values": 2, "behaviour": 3, "facts": 4, "roleplay": 5}


@dataclass
class DemoSize:
    """How big each stage is. `full()` is the README's run, `quick()` the CI run.

    >>> DemoSize.quick().to_dict()["ablate_modes"], DemoSize.full().n_deception
    (['zero'], 120)
    """

    train_steps: int = 16  # used only when no checkpoint is given or shipped
    train_batch: int = 4
    n_train: int = 2000  # generated training problems
    n_eval: int = 48  # held-out problems for the accuracy table (each mode)
    cot_tokens: int = 64  # written-reasoning budget
    n_deception: int = 120  # samples (= 2 x questions)
    n_values: int = 96
    n_ablate: int = 24
    layer_stride: int = 2  # cache every layer_stride-th layer (0 and n_layers always)
    permutations: int = 10  # group-level label shuffles per probe cell (p-values; >= 10 widens the CIs)
    folds: int = 5
    Cs: tuple[float, ...] = (
        1e-3,
        1e-1,
        10.0,
    )  # logistic C grid for the nested CV (3 values: 2.5x faster than 6)
    control: bool = True  # also the placement="response" control of deception-arith
    ablate_modes: tuple[str, ...] = ("zero", "mean")
    batch_size: int = 16
    organism: str = "pointer3"  # the opening positive control (codi.organisms); "" skips it
    n_organism: int = 500  # held-out organism problems (accuracy and probes)
    n_organism_pairs: int = 200  # clean/corrupt pairs per hop for patching
    behaviour: bool = True  # behaviour labels (CODI and plain model)
    behaviour_conditions: tuple[str, ...] = ("lie", "none")  # instruction before every question ("none": bare)
    n_behaviour: int = 32  # arithmetic questions per (model, instruction); the forward passes dominate the stage
    behaviour_tokens: int = 10  # greedy answer tokens of the CODI model ("The answer is: 123" is 8); plain: 4 fewer
    behaviour_steps: int = 2  # operations per question (2: the CODI model gets about a quarter right, so both
    # behaviours occur; at 2-3 steps it was 2 of 32)
    behaviour_layer_stride: int = 4  # layers cached and probed for the behaviour labels
    transfer: bool = True  # transfer between instructed-facts, deception-arith and roleplaying
    transfer_layer_stride: int = 4  # layers probed for instructed-facts / roleplaying and in the transfer fits
    n_facts: int = 48  # instructed-facts samples (pairs)
    n_roleplay: int = 48  # roleplaying samples (pairs)

    @classmethod
    def full(cls) -> DemoSize:
        return cls()

    @classmethod
    def quick(cls) -> DemoSize:
        return cls(
            train_steps=1,
            train_batch=2,
            n_train=64,
            n_eval=8,
            cot_tokens=40,
            n_deception=48,
            n_values=32,
            n_ablate=6,
            layer_stride=6,
            permutations=10,
            folds=4,
            control=False,
            ablate_modes=("zero",),
            n_organism=200,
            n_organism_pairs=100,
            behaviour_conditions=("lie",),
            n_behaviour=16,
            behaviour_tokens=10,
            behaviour_layer_stride=6,
            n_facts=16,
            n_roleplay=16,
            transfer_layer_stride=6,
        )

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["ablate_modes"], d["Cs"] = list(self.ablate_modes), list(self.Cs)
        d["behaviour_conditions"] = list(self.behaviour_conditions)
        return d



# ------------------------------------------------------------------------------------------------ the model
def shipped_checkpoint(model: str) -> Path | None:
    """`codi/pretrained/<model>-arith` when the project ships a trained adapter for this base, else None."""
    import codi

    folder = Path(codi.__file__).parent / "pretrained" / f"{model}-arith"
    return folder if (folder / "codi_config.json").exists() else None


def get_codi_model(
    model: str, out: Path, checkpoint: str | None, size: DemoSize, say=print
) -> tuple[Any, str]:
    """(CODIModel, how it was obtained): --checkpoint, the shipped one, an earlier run's, or trained now.

    >>> import dataclasses
    >>> cm, how = get_codi_model("tiny-llama", Path("runs/never"), None, dataclasses.replace(DemoSize(), train_steps=0))
    >>> how, cm.config.num_latents
    ('untrained (fresh LoRA + projection, 0 training steps)', 6)
    """
    from codi import CODIConfig, CODIModel, data, train
    from codi.train import TrainRecord

    if checkpoint is not None:
        folder = Path(checkpoint).expanduser()
        if not (folder / "codi_config.json").exists():
            raise FileNotFoundError(
                f"--checkpoint {folder}: no codi_config.json there; pass a folder written by "
                f"`codi-lens train` / CODIModel.save_pretrained"
            )
        return CODIModel.from_pretrained(folder).eval(), f"checkpoint {folder}"
    shipped = shipped_checkpoint(model)
    if shipped is not None:
        return CODIModel.from_pretrained(shipped).eval(), f"shipped checkpoint {shipped}"
    folder = out / "codi-model"
    cfg = CODIConfig(base_model=model, num_latents=6, lora_r=32, lora_alpha=8.0)
    if size.train_steps <= 0:
        return CODIModel.from_config(cfg).eval(), "untrained (fresh LoRA + projection, 0 training steps)"
    if (folder / "codi_config.json").exists():
        rec = TrainRecord.load(folder)
        if rec.step == size.train_steps and rec.finished:
            return CODIModel.from_pretrained(
                folder
            ).eval(), f"trained {rec.step} steps by an earlier demo run"
        raise ValueError(
            f"{folder} holds a model trained for {rec.step} steps, not {size.train_steps}; pass "
            f"--train-steps {rec.step} to reuse it, or another --out"
        )
    problems = data.arithmetic(size.n_train, steps=(2, 3), seed=SEEDS["train"])
    say(
        f"  no checkpoint given or shipped: training {size.train_steps} steps x batch {size.train_batch} "
        f"(a real run: `codi-lens train --base {model} --out DIR`, then `codi-lens demo --checkpoint DIR`)"
    )
    cm = CODIModel.from_config(cfg)
    train(
        cm,
        problems,
        folder,
        max_steps=size.train_steps,
        batch_size=size.train_batch,
        checkpoint_every=max(size.train_steps, 1),
    )
    return CODIModel.from_pretrained(folder).eval(), f"trained {size.train_steps} steps now"
