"""The position-label grammar (poslabels/grammar.py): every form, its kind, index and run order."""

from __future__ import annotations

import pytest

import poslabels
from poslabels import Label

CASES = {
    "q_0": Label("q_0", "question", 0, False),
    "q_12": Label("q_12", "question", 12, False),
    "q[-3]": Label("q[-3]", "question", -3, True),
    "bot": Label("bot", "bot"),
    "latent_5": Label("latent_5", "latent", 5, False),
    "eot": Label("eot", "eot"),
    "resp_2": Label("resp_2", "response", 2, False),
    "tok_7": Label("tok_7", "token", 7, False),
    "prompt[-2]": Label("prompt[-2]", "token", -2, True),
    "last": Label("last", "last"),
    "latents": Label("latents", "other"),
    "layer_9": Label("layer_9", "other"),
    "latent_x": Label("latent_x", "other"),
    "q[2]": Label("q[2]", "other"),
}


@pytest.mark.parametrize("text", list(CASES))
def test_parse_every_form(text):
    assert poslabels.parse(text) == CASES[text]
    assert poslabels.kind(text) == CASES[text].kind


def test_latent_index_and_aliases():
    assert [poslabels.latent_index(t) for t in ("latent_0", "latent_11", "resp_1", "latents")] == [0, 11, None, None]
    assert [poslabels.is_latent(t) for t in ("latent_3", "q_3")] == [True, False]
    assert [poslabels.is_alias(t) for t in ("last", "prompt[-1]", "q[-2]", "tok_0", "q_0", "bot")] == [
        True, True, True, False, False, False]
    assert poslabels.parse(3) == Label("3", "other")  # non-strings are read as str()


def test_run_order_kinds_then_absolute_then_relative_unknown_last():
    labels = ["other_b", "resp_1", "q[-1]", "eot", "latent_10", "latent_2", "q_1", "bot", "q_0", "resp_0", "other_a"]
    assert poslabels.run_order(labels) == [
        "q_0", "q_1", "q[-1]", "bot", "latent_2", "latent_10", "eot", "resp_0", "resp_1", "other_b", "other_a"]
    assert poslabels.run_order(["last", "prompt[-1]", "prompt[-3]", "tok_2", "tok_0"]) == [
        "tok_0", "tok_2", "prompt[-3]", "prompt[-1]", "last"]
    assert poslabels.run_order(["bot", "bot", "q_0"]) == ["q_0", "bot", "bot"]
