"""codi.batch: the teacher and student layouts, the distillation position, answers, bad problems.

(Named test_codi_batch.py: interp.interventions has a batch module too, and pytest imports test files by basename.)
"""

from __future__ import annotations

import pytest
from codi_fixtures import PROBLEMS, make_model

import interp
from codi.batch import answer_tokens, extract_answer, make_batch
from codi.config import CODIConfig


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-llama"])
def cm(request):
    return make_model(request.param)


def test_distillation_position_from_offsets():
    gpt = interp.load_model("tiny-gpt2").tokenizer
    ids, pos = answer_tokens(gpt, "The answer is: 18", "The answer is:")
    assert gpt.convert_ids_to_tokens(ids)[pos] == ":" and gpt.decode(ids[pos + 1:]) == " 18"
    with pytest.raises(ValueError, match=r"not found in the answer text 'Result: 18'"):
        answer_tokens(gpt, "Result: 18", "The answer is:")
    with pytest.raises(ValueError, match="merges the end of the answer marker"):
        answer_tokens(gpt, "The answer is: 18", "The answer i")  # 'Ġis' straddles the marker's end
    with pytest.raises(ValueError, match="nothing follows"):
        answer_tokens(gpt, "The answer is: ", "The answer is:")


@pytest.mark.slow
def test_distillation_position_real_tokenizer():
    """SmolLM2 splits ' 18' into 'Ġ', '1', '8': the position is the lone space (the official '+1' for llama)."""
    tok = interp.load_model("smollm2-135m").tokenizer
    b = make_batch(tok, CODIConfig("smollm2-135m"), PROBLEMS)
    for i in range(len(PROBLEMS)):
        t = b.teacher_ids[i].tolist()
        p = int(b.teacher_pos[i])
        assert tok.convert_ids_to_tokens(t[p]) == "Ġ"
        assert tok.decode(t[p + 1:p + 2]) == PROBLEMS[i]["answer"][0]
        s = b.response_ids[i].tolist()
        sp = int(b.student_pos[i]) - 1  # student_pos counts the <eot> input at 0
        assert s[sp] == t[p] and s[sp + 1] == t[p + 1]


def test_make_batch_layout(cm):
    b = cm.make_batch(PROBLEMS)
    tok = cm.tokenizer
    for i, p in enumerate(PROBLEMS):
        n = int(b.teacher_mask[i].sum())
        text = tok.decode(b.teacher_ids[i, :n])
        steps = p["cot"].split()[:-1]  # the official code leaves the last CoT step out of the teacher's text
        assert text == f"{p['question']}\n" + (" ".join(steps) + "\n" if steps else "") + \
            f"The answer is: {p['answer']}{tok.eos_token}"
        assert tok.decode(b.teacher_ids[i, b.teacher_pos[i] + 1:n - 1]).strip() == p["answer"]
        # the answer part is the same token sequence in teacher and student
        m = int(b.response_mask[i].sum())
        assert b.response_ids[i, :m].tolist() == b.teacher_ids[i, n - m:n].tolist()
        assert int(b.student_pos[i]) - 1 == int(b.teacher_pos[i]) - (n - m)
        assert (b.teacher_labels[i, :n - m - len(steps and tok(" ".join(steps) + "\n").input_ids)] == -100).all()
    assert b.prompt_mask[:, -1].all()  # left-padded


def test_extract_answer():
    assert extract_answer("The answer is: 42", "The answer is:") == "42"
    assert extract_answer("blah 3 then 7", "The answer is:") == "7"
    assert extract_answer("The answer is: -1,250.5 x", "The answer is:") == "-1250.5"
    assert extract_answer("nothing", "The answer is:") == ""


def test_bad_problems(cm):
    with pytest.raises(ValueError, match="has no 'cot'"):
        cm.make_batch([dict(question="q", answer="1")])
    with pytest.raises(ValueError, match="max_length"):
        make_batch(cm.tokenizer, CODIConfig(cm.base_name, max_length=8), PROBLEMS)
    with pytest.raises(ValueError, match="nothing follows"):
        cm.make_batch([dict(question="q", cot="<<1+1=2>>", answer=" ")])


def test_eos_separators_layout():
    """Official `--remove_eos False`: eos after the prompt and the CoT, and an eos right after <eot>."""
    cm = make_model("tiny-llama", eos_separators=True)
    eos = cm.tokenizer.eos_token_id
    b = cm.make_batch(PROBLEMS[:1])
    assert b.prompt_ids[0, -1] == eos and b.response_ids[0, 0] == eos
    n = int(b.teacher_mask[0].sum())
    m = int(b.response_mask[0].sum())
    assert b.teacher_ids[0, n - m] == eos  # the cot's eos is the same token as the student's eos after <eot>
    out = cm.generate(["Mia has 7 coins."], max_new_tokens=3)
    assert out.run.n_forced == 1 and out.run.response_ids[0, 0] == eos


def test_same_answer_is_the_one_rule_for_right_answers():
    """Numbers compare as numbers (the string compare that organism accuracy used counted "10.0" wrong for 10),
    other text as stripped text; nothing matches an empty answer."""
    from codi.batch import same_answer

    assert same_answer("10.0", "10") and same_answer("1,200", "1200.00") and same_answer("-3", " -3 ")
    assert not same_answer("10.5", "10") and not same_answer("", "") and not same_answer("10", "")
    assert same_answer("seven", " seven") and not same_answer("seven", "Seven")
