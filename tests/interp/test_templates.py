"""Prompt templates: fields, chat templates, the sample table, clear errors; and how a CODI cache uses them."""

from __future__ import annotations

import pandas as pd
import pytest

import codi
import interp
from interp.codi_cache import codi_cache
from interp.templates import Template, as_records, render_all, template_fields


def test_fields_and_plain_rendering():
    t = Template(system="{instruction}", user="Q: {question}", response="{response}")
    assert t.fields() == ["instruction", "question", "response"]
    r = render_all(t, [dict(id="a", instruction="Be honest.", question="2+2?", response="4")])[0]
    assert (r.prompt, r.response) == ("Be honest.\nQ: 2+2?", "4")
    assert template_fields("{a}{b.x}{a}") == ["a", "b"]
    assert Template.from_dict(t.to_dict()) == t


@pytest.mark.slow  # smollm2-135m's chat template (real weights)
def test_chat_template_applied_where_the_tokenizer_has_one():
    tok = interp.load_model("smollm2-135m").tokenizer
    t = Template(system="{instruction}", user="{question}")
    r = render_all(t, [dict(id="0", instruction="Be honest.", question="2+2?")], tokenizer=tok)[0]
    assert r.prompt == (
        "<|im_start|>system\nBe honest.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    )
    # CODI models keep the format they were trained on unless asked
    assert (
        render_all(t, [dict(id="0", instruction="Be honest.", question="2+2?")], tok, codi=True)[0].prompt
        == "Be honest.\n2+2?"
    )
    assert Template(chat="always").uses_chat(tok, codi=True)
    tiny = interp.load_model("tiny-llama").tokenizer
    assert render_all(Template(), [dict(id="0", text="hi")], tokenizer=tiny)[0].prompt == "hi"
    with pytest.raises(ValueError, match="no chat template"):
        render_all(Template(chat="always"), [dict(id="0", text="hi")], tokenizer=tiny)


def test_missing_fields_error_names_fields_samples_and_fix():
    t = Template(system="{instruction}", user="{question}")
    recs = as_records([dict(question="a"), dict(question="b", instruction="x"), dict(text="c")])
    with pytest.raises(ValueError) as err:
        render_all(t, recs)
    msg = str(err.value)
    assert "'instruction' (missing in 2 of 3 samples, e.g. ids ['0', '2'])" in msg
    assert "'question' (missing in 1 of 3 samples, e.g. ids ['2'])" in msg
    assert "The samples have fields ['id', 'instruction', 'question', 'text']" in msg
    with pytest.raises(ValueError, match="positional field"):
        Template(user="{}")
    with pytest.raises(ValueError, match="chat="):
        Template(chat="sometimes")


def test_records_from_many_inputs():
    assert as_records(["x"]) == [{"text": "x", "id": "0"}]
    df = pd.DataFrame(dict(text=["a", "b"], label=[0, 1], id=["u", "v"]))
    assert [r["id"] for r in as_records(df)] == ["u", "v"]
    assert as_records(codi.data.arithmetic(1, steps=2, seed=0))[0]["question"]
    with pytest.raises(ValueError, match="ids repeat"):
        as_records([dict(text="a", id="1"), dict(text="b", id="1")])
    with pytest.raises(ValueError, match="empty"):
        as_records([])
    with pytest.raises(TypeError, match="not one string"):
        as_records("just a string")


def test_codi_sample_table_keeps_user_columns():
    cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=2, lora_r=2))
    recs = [
        dict(
            id="p1",
            question="1+1?",
            instruction="Be honest.",
            label=0,
            group="q1",
            difficulty=3,
            response="The answer is: 2",
        ),
        dict(
            id="p2",
            question="1+1?",
            instruction="Lie.",
            label=1,
            group="q1",
            difficulty=3,
            response="The answer is: 5",
        ),
    ]
    t = Template(system="{instruction}", user="{question}", response="{response}")
    c = codi_cache(cm, recs, template=t, layers=[1], positions=["bot", "latent_1", "resp_0"], progress=False)
    s = c.samples
    assert list(s.columns[:2]) == ["id", "text"]
    assert s["id"].tolist() == ["p1", "p2"] and s["group"].tolist() == ["q1", "q1"]
    assert s["label"].tolist() == [0, 1] and s["difficulty"].tolist() == [3, 3]
    assert s["prompt_text"].tolist() == ["Be honest.\n1+1?", "Lie.\n1+1?"]
    assert s["response_text"].tolist() == ["The answer is: 2", "The answer is: 5"]
    assert c.meta["codi"]["template"]["system"] == "{instruction}"
    assert c.positions == ["bot", "latent_1", "resp_0"] and c.array().shape == (2, 1, 3, 64)
