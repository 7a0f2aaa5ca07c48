"""argcheck: the project's validators for arguments at the boundary, written once.

Every public call and every CLI flag checks its inputs with these before any work starts and before anything is
written. An error is a `BadArgument`: it names the argument, shows the value, says what is allowed and the fix.
It subclasses both ValueError and TypeError, so `except ValueError` and `except TypeError` both catch it.
A leaf: it imports nothing of the project.

    >>> from argcheck import check_int, BadArgument
    >>> check_int("batch_size", 8, min=1)
    8
    >>> check_int("batch_size", -1, min=1)
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: batch_size=-1: must be an integer >= 1. Fix: pass batch_size=1 or more.
"""

from argcheck.checks import (
    check_bool,
    check_choice,
    check_float,
    check_floats,
    check_int,
    check_ints,
    check_layers,
    check_new_path,
    check_out_folder,
    check_path_exists,
    check_str,
    check_strings,
)
from argcheck.errors import BadArgument

__all__ = ["BadArgument", "check_int", "check_float", "check_bool", "check_str", "check_choice", "check_strings",
           "check_layers", "check_out_folder", "check_path_exists", "check_new_path", "check_floats", "check_ints"]
