"""argcheck.errors: BadArgument is a ValueError and a TypeError that reads as one line; long values are cut."""

from __future__ import annotations

from argcheck import BadArgument
from argcheck.errors import show


def test_bad_argument_is_a_value_and_a_type_error_and_reads_as_one_line():
    err = BadArgument("folds", 1, "must be an integer >= 2", "pass folds=2 or more")
    assert isinstance(err, ValueError) and isinstance(err, TypeError)
    assert str(err) == "folds=1: must be an integer >= 2. Fix: pass folds=2 or more."
    assert str(BadArgument("--resume", True, "nothing to resume", "drop --resume")) == \
        "--resume: nothing to resume. Fix: drop --resume."
    assert (err.name, err.value) == ("folds", 1)


def test_long_values_are_cut_and_the_shown_text_can_be_given():
    assert show("abc") == "'abc'" and show([1, 2]) == "[1, 2]"
    long = "x" * 200
    assert show(long, limit=20) == repr(long)[:16] + "...(202 chars)" and len(show(long)) < 100
    err = BadArgument("prompts", long, "must be a list of strings")
    assert str(err) == f"prompts={show(long)}: must be a list of strings." and err.value == long
    assert str(BadArgument("cache", object(), "must be an ActivationCache", shown="<object>")) == \
        "cache=<object>: must be an ActivationCache."
