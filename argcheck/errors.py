"""The one error type of a bad argument: names the argument, the value, what is allowed and the fix.

    >>> str(BadArgument("folds", 1, "must be an integer >= 2", "pass folds=2 or more"))
    'folds=1: must be an integer >= 2. Fix: pass folds=2 or more.'
    >>> str(BadArgument("--folds", 1, "must be an integer >= 2", "pass --folds 2 or more"))    # a flag
    '--folds 1: must be an integer >= 2. Fix: pass --folds 2 or more.'
"""

from __future__ import annotations

from typing import Any

__all__ = ["BadArgument", "show"]


def show(value: Any, limit: int = 80) -> str:
    """`repr(value)`, cut to `limit` characters (a long text or a big array stays readable).

    >>> show("x" * 100, limit=12)
    "'xxxxxxx...(102 chars)"
    """
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 4]}...({len(text)} chars)"


class BadArgument(ValueError, TypeError):
    """A bad argument value. `.name`, `.value`, `.allowed`, `.fix` keep the parts; str() is one line.

    >>> err = BadArgument("lr", -1, "must be a finite number > 0", "use e.g. lr=1e-3")
    >>> str(err)
    'lr=-1: must be a finite number > 0. Fix: use e.g. lr=1e-3.'
    >>> err.name, err.value, isinstance(err, ValueError) and isinstance(err, TypeError)
    ('lr', -1, True)
    """

    def __init__(self, name: str, value: Any, allowed: str, fix: str = "", *, shown: str | None = None):
        self.name, self.value, self.allowed, self.fix = name, value, allowed, fix
        shown = shown if shown is not None else show(value)
        if name.startswith("-"):  # a command-line flag: `--max-steps -1`, or just `--resume` for a switch
            text = f"{name}: {allowed}" if value is True else f"{name} {shown}: {allowed}"
        else:
            text = f"{name}={shown}: {allowed}"
        if fix:
            text += f". Fix: {fix}"
        super().__init__(text.rstrip(".") + ".")
