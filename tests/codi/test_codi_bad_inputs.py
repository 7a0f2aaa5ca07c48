"""Bad inputs to codi: configs, training, data files, conversion, checkpoint folders, training checkpoints and the
organisms. Each is refused with the expected error type and a message naming the argument (or the file), and the
working folder is unchanged afterwards (`refused`, tests/conftest.py). A case is (id, call(t, c), error, named,
prep(t, c)): `prep` writes the bad file before the snapshot; `t` is the working folder, `c` the shared fixtures.
"""

from __future__ import annotations

import json
import math
import shutil
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

import codi
from codi import data
from codi.checkpoint import verify_checksums
from codi.config import CODIConfig
from codi.organisms.train import OrganismSpec, train_organism
from codi.train import train, train_dir
from codi.train_state import verify_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/codi/conftest.py


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    """A tiny CODI model, its saved folder, an official state dict of it, a finished run with checkpoints."""
    root = tmp_path_factory.mktemp("fixtures")
    cm = codi.CODIModel.from_config(CODIConfig("tiny-llama", num_latents=2, lora_r=4, lora_dropout=0.0))
    folder = cm.save_pretrained(root / "ckpt")
    sd = codi.official_state_dict(cm)
    probs = data.arithmetic(16, seed=0)
    train(cm, probs, root / "run", max_steps=2, batch_size=4, checkpoint_every=1, progress=False)
    return SimpleNamespace(cm=cm, folder=folder, sd=sd, probs=probs, run=train_dir(root / "run"),
                           alpha=cm.config.lora_alpha)


def copy_ckpt(t, c):
    shutil.copytree(c.folder, t / "ckpt")


def flip(path, offset=-10):
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def edit_config(t, c, **edit):
    copy_ckpt(t, c)
    p = t / "ckpt" / "codi_config.json"
    p.write_text(json.dumps({**json.loads(p.read_text()), **edit}))


def nan_special(t, c):
    """A model whose <bot>/<eot> rows are NaN (a diverged run), saved with valid checksums."""
    cm = codi.CODIModel.from_config(CODIConfig("tiny-llama", num_latents=2, lora_r=4))
    with torch.no_grad():
        cm.special.fill_(float("nan"))
    cm.save_pretrained(t / "ckpt")


def legacy_tampered_adapter(t, c):
    copy_ckpt(t, c)
    (t / "ckpt" / "checksums.json").unlink()
    (t / "ckpt" / "adapter" / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")


def save_sd(t, sd, name="model.safetensors"):
    save_file(sd, str(t / name))


def without(sd, pick):
    out = dict(sd)
    del out[next(k for k in out if pick(k))]
    return out


def renamed_prj(sd):
    out = dict(sd)
    out["prj.9.weight"] = out.pop("prj.1.weight")
    return out


def gpt2_sd(t, c):
    other = codi.CODIModel.from_config(CODIConfig("tiny-gpt2", num_latents=2, lora_r=4))
    save_sd(t, codi.official_state_dict(other))


def copy_run(t, c):
    shutil.copytree(c.run, t / "run-train")
    return last_run_ckpt(t)


def tamper_run(t, c, what):
    ckpt = copy_run(t, c)
    if what == "flip":
        flip(ckpt / "trainable.safetensors")
    elif what == "truncate":
        p = ckpt / "optimizer.safetensors"
        p.write_bytes(p.read_bytes()[:100])
    elif what == "missing":
        (ckpt / "rng_0.json").unlink()
    elif what == "garble":
        (ckpt / "state.json").write_text('{"step": 2, ')
    elif what == "no-key":
        st = json.loads((ckpt / "state.json").read_text())
        del st["losses"]
        (ckpt / "state.json").write_text(json.dumps(st))
    elif what == "model":
        flip(ckpt / "model" / "adapter" / "adapter_model.safetensors")


def last_run_ckpt(t):
    return sorted((t / "run-train" / "checkpoints").iterdir())[-1]


def busy_out(t, c):
    (t / "busy").mkdir()
    (t / "busy" / "notes.txt").write_text("mine")


def bad_file(text: bytes, name="d.jsonl"):
    return lambda t, c: (t / name).write_bytes(text)


def cfg(**kw):
    return lambda t, c: CODIConfig(**{"base_model": "tiny-llama", **kw})


def tcfg(**kw):
    return lambda t, c: train(c.cm, c.probs, t / "out", **{"progress": False, "max_steps": 1, "batch_size": 4, **kw})


V, T, F = ValueError, TypeError, FileNotFoundError
GOOD = '{"question": "q", "cot": "<<1+1=2>>", "answer": "2"}\n'
CASES = [
    # ---- CODIConfig: every field typed and ranged
    ("cfg-base-empty", cfg(base_model=""), V, "base_model=''"),
    ("cfg-base-none", lambda t, c: CODIConfig(None), V, "base_model=None"),
    ("cfg-latents-0", cfg(num_latents=0), V, "num_latents=0"),
    ("cfg-latents-bool", cfg(num_latents=True), V, "num_latents=True"),
    ("cfg-latents-float", cfg(num_latents=2.5), V, "num_latents=2.5"),
    ("cfg-latents-text", cfg(num_latents="6"), V, "num_latents='6'"),
    ("cfg-latents-huge", cfg(num_latents=100_000), V, "num_latents=100000"),
    ("cfg-alpha-negative", cfg(lora_alpha=-5), V, "lora_alpha=-5"),
    ("cfg-alpha-zero", cfg(lora_alpha=0), V, "lora_alpha=0"),
    ("cfg-alpha-nan", cfg(lora_alpha=math.nan), V, "lora_alpha=nan"),
    ("cfg-alpha-text", cfg(lora_alpha="32"), V, "lora_alpha='32'"),
    ("cfg-rank-0", cfg(lora_r=0), V, "lora_r=0"),
    ("cfg-rank-float", cfg(lora_r=1.5), V, "lora_r=1.5"),
    ("cfg-lora-dropout-1", cfg(lora_dropout=1.0), V, "lora_dropout=1.0"),
    ("cfg-prj-dropout-negative", cfg(prj_dropout=-0.1), V, "prj_dropout=-0.1"),
    ("cfg-prj-dim-0", cfg(prj_dim=0), V, "prj_dim=0"),
    ("cfg-finetune", cfg(finetune="qlora"), V, "finetune='qlora'"),
    ("cfg-loss-type", cfg(loss_type="huber"), V, "loss_type='huber'"),
    ("cfg-distill-text", cfg(distill_layers="last"), V, "distill_layers='last'"),
    ("cfg-distill-empty", cfg(distill_layers=[]), V, "distill_layers=[]"),
    ("cfg-distill-negative", cfg(distill_layers=[-1]), V, "distill_layers[0]=-1"),
    ("cfg-weight-negative", cfg(teacher_ce_weight=-1), V, "teacher_ce_weight=-1"),
    ("cfg-weights-all-zero", cfg(teacher_ce_weight=0, student_ce_weight=0, distill_weight=0), V, "loss weight"),
    ("cfg-use-prj-text", cfg(use_prj="yes"), V, "use_prj='yes'"),
    ("cfg-seed-negative", cfg(seed=-1), V, "seed=-1"),
    ("cfg-max-length-0", cfg(max_length=0), V, "max_length=0"),
    ("cfg-prompt-template", cfg(prompt_template="Q: "), V, "prompt_template='Q: '"),
    ("cfg-answer-template", cfg(answer_template="The answer is:"), V, "answer_template="),
    ("cfg-answer-marker", cfg(answer_marker="Result:"), V, "answer_marker='Result:'"),
    ("cfg-targets-string", cfg(lora_target_modules="q_proj"), V, "lora_target_modules='q_proj'"),
    ("cfg-extra-list", cfg(extra=[]), V, "extra=[]"),
    ("cfg-unknown-field", lambda t, c: CODIConfig.from_dict({"base_model": "tiny-llama", "latents": 3}), V,
     "'latents'"),
    ("cfg-load-garbled", lambda t, c: CODIConfig.load(t / "c.json"), V, "c.json",
     bad_file(b'{"base_model": ', "c.json")),
    # ---- TrainConfig and codi.train: refused before anything is written
    ("train-max-steps-negative", tcfg(max_steps=-1), V, "max_steps=-1"),
    ("train-max-steps-zero", tcfg(max_steps=0), V, "max_steps=0"),
    ("train-max-steps-float", tcfg(max_steps=1.5), V, "max_steps=1.5"),
    ("train-batch-0", tcfg(batch_size=0), V, "batch_size=0"),
    ("train-batch-negative", tcfg(batch_size=-4), V, "batch_size=-4"),
    ("train-batch-too-big", tcfg(batch_size=64), V, "batch_size=64"),
    ("train-micro-0", tcfg(micro_batch_size=0), V, "micro_batch_size=0"),
    ("train-micro-above-batch", tcfg(micro_batch_size=8), V, "micro_batch_size=8"),
    ("train-micro-not-divisor", tcfg(micro_batch_size=3), V, "micro_batch_size=3"),
    ("train-lr-zero", tcfg(lr=0), V, "lr=0"),
    ("train-lr-nan", tcfg(lr=math.nan), V, "lr=nan"),
    ("train-epochs-zero", tcfg(epochs=0), V, "epochs=0"),
    ("train-betas-one", tcfg(betas=(1.0, 0.9)), V, "betas[0]=1.0"),
    ("train-betas-single", tcfg(betas=(0.9,)), V, "betas=(0.9,)"),
    ("train-weight-decay", tcfg(weight_decay=-1), V, "weight_decay=-1"),
    ("train-eps-zero", tcfg(eps=0), V, "eps=0"),
    ("train-warmup", tcfg(warmup_frac=1.5), V, "warmup_frac=1.5"),
    ("train-grad-norm", tcfg(max_grad_norm=0), V, "max_grad_norm=0"),
    ("train-checkpoint-every", tcfg(checkpoint_every=0), V, "checkpoint_every=0"),
    ("train-keep-negative", tcfg(keep_checkpoints=-1), V, "keep_checkpoints=-1"),
    ("train-precision", tcfg(mixed_precision="fp8"), V, "mixed_precision='fp8'"),
    ("train-guard-text", tcfg(guard="yes"), V, "guard='yes'"),
    ("train-patience-0", tcfg(guard_patience=0), V, "guard_patience=0"),
    ("train-rollback-factor", tcfg(rollback_lr_factor=0), V, "rollback_lr_factor=0"),
    ("train-inject-0", tcfg(inject_nan_steps=[0]), V, "inject_nan_steps[0]=0"),
    ("train-progress-int", tcfg(progress=1), V, "progress=1"),
    ("train-unknown-field", tcfg(learning_rate=1e-3), V, "learning_rate"),
    ("train-config-type", tcfg(config={"lr": 1}), V, "config="),
    ("train-problems-empty", lambda t, c: train(c.cm, [], t / "out"), V, "problems=[]"),
    ("train-problems-text", lambda t, c: train(c.cm, "problems.jsonl", t / "out"), V, "problems='problems.jsonl'"),
    ("train-problem-no-cot", lambda t, c: train(c.cm, [{"question": "q", "answer": "1"}] * 8, t / "out",
                                                batch_size=4), V, "problems[0]"),
    ("train-model-none", lambda t, c: train(None, c.probs, t / "out"), V, "cm=None"),
    ("train-out-empty", lambda t, c: train(c.cm, c.probs, "", batch_size=4), V, "out=''"),
    ("train-out-file", lambda t, c: train(c.cm, c.probs, t / "notes.txt", batch_size=4), V, "out=",
     lambda t, c: (t / "notes.txt").write_text("mine")),
    ("train-out-not-empty", lambda t, c: train(c.cm, c.probs, t / "busy", batch_size=4), V, "already exists",
     busy_out),
    ("train-resume-nothing", lambda t, c: train(c.cm, c.probs, t / "new", batch_size=4, resume=True), V,
     "resume=True"),
    ("train-resume-text", lambda t, c: train(c.cm, c.probs, t / "new", batch_size=4, resume="yes"), V,
     "resume='yes'"),
    ("train-checkpoints-without-resume", lambda t, c: train(c.cm, c.probs, t / "run", batch_size=4), V,
     "resume=False", lambda t, c: copy_run(t, c)),
    # ---- data files
    ("data-missing", lambda t, c: data.load(t / "nope.jsonl"), F, "nope.jsonl"),
    ("data-path-empty", lambda t, c: data.load(""), V, "path=''"),
    ("data-not-utf8", lambda t, c: data.load(t / "d.jsonl"), V, "d.jsonl: line 2: not UTF-8",
     bad_file(GOOD.encode() + b'{"question": "\xff"}\n')),
    ("data-bad-json", lambda t, c: data.load(t / "d.jsonl"), V, "d.jsonl: line 2: invalid JSON",
     bad_file(GOOD.encode() + b"{oops}\n")),
    ("data-missing-field", lambda t, c: data.load(t / "d.jsonl"), V, "d.jsonl: line 1: missing field(s) ['cot']",
     bad_file(b'{"question": "q", "answer": "2"}\n')),
    ("data-answer-not-number", lambda t, c: data.load(t / "d.jsonl"), V, "answer 'two'",
     bad_file(b'{"question": "q", "cot": "", "answer": "two"}\n')),
    ("data-empty-file", lambda t, c: data.load(t / "d.jsonl"), V, "file is empty", bad_file(b"  \n")),
    ("data-truncated-array", lambda t, c: data.load(t / "d.json"), V, "truncated",
     bad_file(b'[{"question": "q", "cot": "", "answer": "2"},', "d.json")),
    ("split-frac-zero", lambda t, c: data.split(c.probs, test_frac=0), V, "test_frac=0"),
    ("split-frac-one", lambda t, c: data.split(c.probs, test_frac=1.0), V, "test_frac=1.0"),
    ("split-empty-side", lambda t, c: data.split(c.probs, test_frac=0.01), V, "test_frac=0.01"),
    ("save-to-folder", lambda t, c: data.save(c.probs, t), V, "path="),
    # ---- codi.convert: official state dicts
    ("convert-text-file", lambda t, c: codi.convert(t / "notes.txt", base_model="tiny-llama"), V, "notes.txt",
     lambda t, c: (t / "notes.txt").write_text("hello")),
    ("convert-garbled-safetensors", lambda t, c: codi.convert(t / "model.safetensors", base_model="tiny-llama"), V,
     "model.safetensors", lambda t, c: (t / "model.safetensors").write_text("hello")),
    ("convert-missing", lambda t, c: codi.convert(t / "nope.bin", base_model="tiny-llama"), F, "nope.bin"),
    ("convert-empty-folder", lambda t, c: codi.convert(t, base_model="tiny-llama"), F, "neither"),
    ("convert-base-weight-deleted", lambda t, c: codi.convert(t / "model.safetensors", base_model="tiny-llama",
                                                              lora_alpha=c.alpha), V, "lacks 1 base weight",
     lambda t, c: save_sd(t, without(c.sd, lambda k: ".base_layer." in k))),
    ("convert-projection-renamed", lambda t, c: codi.convert(t / "model.safetensors", base_model="tiny-llama"), V,
     "prj.9.weight", lambda t, c: save_sd(t, renamed_prj(c.sd))),
    ("convert-other-architecture", lambda t, c: codi.convert(t / "model.safetensors", base_model="tiny-llama"), V,
     "wrong base model", gpt2_sd),
    ("convert-no-lora", lambda t, c: codi.convert(t / "model.safetensors", base_model="tiny-llama"), V,
     "no LoRA weights", lambda t, c: save_sd(t, {k: v for k, v in c.sd.items() if ".lora_" not in k})),
    ("convert-foreign-key", lambda t, c: codi.convert(t / "model.safetensors", base_model="tiny-llama"), V,
     "unexpected key 'model.norm.weight'", lambda t, c: save_sd(t, {**c.sd, "model.norm.weight": torch.ones(2)})),
    ("convert-pickled-object", lambda t, c: codi.convert(t / "pytorch_model.bin", base_model="tiny-llama"), V,
     "pytorch_model.bin", lambda t, c: torch.save({"x": torch.zeros(1), "f": print}, t / "pytorch_model.bin")),
    ("convert-latents-0", lambda t, c: codi.convert(t, base_model="tiny-llama", num_latents=0), V, "num_latents=0"),
    ("convert-alpha-negative", lambda t, c: codi.convert(t, base_model="tiny-llama", lora_alpha=-1), V,
     "lora_alpha=-1"),
    ("convert-base-empty", lambda t, c: codi.convert(t, base_model=""), V, "base_model=''"),
    # ---- CODI checkpoint folders: verified on load, every error names the file
    ("ckpt-adapter-bit-flip", lambda t, c: codi.CODIModel.from_pretrained(t / "ckpt"), V, "adapter_model.safetensors",
     lambda t, c: (copy_ckpt(t, c), flip(t / "ckpt" / "adapter" / "adapter_model.safetensors"))),
    ("ckpt-projection-truncated", lambda t, c: codi.CODIModel.from_pretrained(t / "ckpt"), V, "projection.safetensors",
     lambda t, c: (copy_ckpt(t, c), (t / "ckpt" / "projection.safetensors").write_bytes(b"\x08\x00"))),
    ("ckpt-config-hand-edited", lambda t, c: codi.CODIModel.from_pretrained(t / "ckpt"), V, "codi_config.json",
     lambda t, c: edit_config(t, c, num_latents=3)),
    ("ckpt-special-rows-nan", lambda t, c: codi.CODIModel.from_pretrained(t / "ckpt"), V,
     "special_tokens.safetensors holds NaN", nan_special),
    ("ckpt-legacy-garbled-adapter", lambda t, c: codi.CODIModel.from_pretrained(t / "ckpt"), V,
     "adapter_model.safetensors cannot be read", legacy_tampered_adapter),
    ("ckpt-file-missing", lambda t, c: codi.CODIModel.from_pretrained(t / "ckpt"), F, "special_tokens.safetensors",
     lambda t, c: (copy_ckpt(t, c), (t / "ckpt" / "special_tokens.safetensors").unlink())),
    ("ckpt-tokenizer-file-missing", lambda t, c: codi.CODIModel.from_pretrained(t / "ckpt"), V, "is missing",
     lambda t, c: (copy_ckpt(t, c), next((t / "ckpt" / "tokenizer").iterdir()).unlink())),
    ("ckpt-checksums-garbled", lambda t, c: codi.CODIModel.from_pretrained(t / "ckpt"), V, "checksums.json",
     lambda t, c: (copy_ckpt(t, c), (t / "ckpt" / "checksums.json").write_text("[1, "))),
    ("ckpt-foreign-weights", lambda t, c: codi.CODIModel.from_pretrained(t / "ckpt"), V, "foreign files",
     lambda t, c: (copy_ckpt(t, c), (t / "ckpt" / "extra.bin").write_bytes(b"x"))),
    ("ckpt-folder-empty", lambda t, c: codi.CODIModel.from_pretrained(""), V, "folder=''"),
    ("model-config-dict", lambda t, c: codi.CODIModel.from_config({"base_model": "tiny-llama"}), V, "cfg="),
    ("ckpt-not-a-folder", lambda t, c: codi.CODIModel.from_pretrained(t / "nope"), F, "nope"),
    ("ckpt-official-state-dict", lambda t, c: codi.CODIModel.from_pretrained(t), V, "codi.convert",
     lambda t, c: save_sd(t, c.sd)),
    # ---- training checkpoints: verified before a resume or rollback reads them
    ("run-bit-flip", lambda t, c: verify_checkpoint(last_run_ckpt(t)), V, "trainable.safetensors",
     lambda t, c: tamper_run(t, c, "flip")),
    ("run-truncated", lambda t, c: verify_checkpoint(last_run_ckpt(t)), V, "optimizer.safetensors",
     lambda t, c: tamper_run(t, c, "truncate")),
    ("run-file-missing", lambda t, c: verify_checkpoint(last_run_ckpt(t)), V, "rng_0.json is missing",
     lambda t, c: tamper_run(t, c, "missing")),
    ("run-state-garbled", lambda t, c: verify_checkpoint(last_run_ckpt(t)), V, "state.json is not valid JSON",
     lambda t, c: tamper_run(t, c, "garble")),
    ("run-state-key-removed", lambda t, c: verify_checkpoint(last_run_ckpt(t)), V, "state.json lacks ['losses']",
     lambda t, c: tamper_run(t, c, "no-key")),
    ("run-model-adapter-flip", lambda t, c: verify_checkpoint(last_run_ckpt(t)), V, "adapter_model.safetensors",
     lambda t, c: tamper_run(t, c, "model")),
    # ---- codi.evaluate
    ("evaluate-mode-unknown", lambda t, c: codi.evaluate(c.cm, c.probs, modes=("latent",)), V, "modes='latent'"),
    ("evaluate-modes-string", lambda t, c: codi.evaluate(c.cm, c.probs, modes="codi"), V, "modes='codi'"),
    ("evaluate-no-problems", lambda t, c: codi.evaluate(c.cm, []), V, "problems=[]"),
    ("evaluate-batch-0", lambda t, c: codi.evaluate(c.cm, c.probs, batch_size=0), V, "batch_size=0"),
    ("evaluate-tokens-0", lambda t, c: codi.evaluate(c.cm, c.probs, max_new_tokens=0), V, "max_new_tokens=0"),
    # ---- organisms
    ("organism-unknown", lambda t, c: codi.organisms.load("pointer9"), V, "name='pointer9'"),
    ("organism-name-none", lambda t, c: codi.organisms.folder(None), V, "name=None"),
    ("organism-pairs-n-0", lambda t, c: codi.organisms.pairs("pointer3", 0), V, "n=0"),
    ("organism-pairs-step-0", lambda t, c: codi.organisms.pairs("pointer3", 4, step=0), V, "step=0"),
    ("organism-pairs-step-4", lambda t, c: codi.organisms.pairs("pointer3", 4, step=4), V, "step=4"),
    ("organism-pairs-seed", lambda t, c: codi.organisms.pairs("pointer3", 4, seed=-1), V, "seed=-1"),
    ("organism-spec-family", lambda t, c: OrganismSpec(family="sorting"), V, "family='sorting'"),
    ("organism-spec-depth", lambda t, c: OrganismSpec(depth=0), V, "depth=0"),
    ("organism-spec-steps", lambda t, c: OrganismSpec(codi_steps=0), V, "codi_steps=0"),
    ("organism-train-existing-out", lambda t, c: train_organism(OrganismSpec(), t / "busy"), FileExistsError,
     "busy", busy_out),
]


@pytest.mark.parametrize("call, error, named, prep",
                         [pytest.param(*(list(x[1:]) + [None] * (5 - len(x))), id=x[0]) for x in CASES])
def test_refused(refused, tmp_path, c, call, error, named, prep):
    if prep is not None:
        prep(tmp_path, c)
    refused(lambda: call(tmp_path, c), error, named)


def test_a_damaged_newest_checkpoint_is_set_aside_and_the_run_resumes_exactly_from_the_one_before(tmp_path, capfd):
    probs = data.arithmetic(32, seed=0)

    def model():
        return codi.CODIModel.from_config(CODIConfig("tiny-llama", num_latents=2, lora_r=4, lora_dropout=0.0))

    settings = dict(max_steps=6, batch_size=4, checkpoint_every=3, progress=False)
    full = train(model(), probs, tmp_path / "full", **settings)
    flip(train_dir(tmp_path / "full") / "checkpoints" / "step_000006" / "optimizer.safetensors")
    shutil.rmtree(tmp_path / "full")                     # as if killed after the last checkpoint
    rec = train(model(), probs, tmp_path / "full", resume=True, **settings)
    err = capfd.readouterr().err
    assert "step_000006" in err and "optimizer.safetensors" in err and "falling back" in err
    kinds = [e["kind"] for e in rec.events]
    assert kinds == ["damaged_checkpoint", "resume"] and rec.events[1]["step"] == 3
    assert [e["total"] for e in rec.losses] == pytest.approx([e["total"] for e in full.losses], rel=1e-5)
    names = sorted(p.name for p in (train_dir(tmp_path / "full") / "checkpoints").iterdir())
    assert names == ["step_000000", "step_000003", "step_000006", "step_000006.damaged"]
    assert verify_checksums(tmp_path / "full") and verify_checkpoint(train_dir(tmp_path / "full") / "checkpoints" /
                                                                     "step_000006")["step"] == 6


def test_a_run_that_fails_before_its_first_step_leaves_no_folder(tmp_path):
    """A batch that cannot be built (an answer marker the tokenizer merges away) fails at step 1: the run folder
    with its step-0 checkpoint is removed, so the corrected rerun is not refused as "already holds checkpoints"."""
    cm = codi.CODIModel.from_config(CODIConfig("tiny-llama", num_latents=2, lora_r=4))
    bad = [{"question": "q", "cot": "", "answer": "x" * 600}] * 4        # longer than max_length
    with pytest.raises(ValueError, match="max_length"):
        train(cm, bad, tmp_path / "out", max_steps=1, batch_size=4, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
