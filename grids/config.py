"""GridConfig: the settings a result grid was made with, a plain JSON-able dict whose well-known keys are typed.

Every study writes its own keys (a probe sweep: method, folds, Cs, ...; a patching sweep: baseline, n_pairs_used,
...), so the config stays an open dict, and code that reads `grid.config["baseline"]` keeps working. The keys
that figures and reports rely on have one meaning and one type everywhere, checked whenever they are set:

    >>> from grids import GridConfig
    >>> c = GridConfig(kind="patching", model="tiny-llama", n_layers=2, baseline={"logit_diff_clean": 1.5})
    >>> c.kind, c.n_layers, c["baseline"]["logit_diff_clean"]
    ('patching', 2, 1.5)
    >>> c["n_layers"] = "two"
    Traceback (most recent call last):
    ...
    TypeError: grid config 'n_layers' must be an int or None (the number of blocks of the model); got 'two' (str)
"""

from __future__ import annotations

import numbers
from typing import Any

__all__ = ["GridConfig", "TYPED_KEYS"]

# key -> (type, meaning). Values may also be None (not known).
TYPED_KEYS: dict[str, tuple[type, str]] = {
    "kind": (str, "what made the grid: 'ablation', 'patching', 'steering', 'attribution', or a probe sweep"),
    "model": (str, "the model's name"),
    "n_layers": (int, "the number of blocks of the model"),
    "d_model": (int, "the residual width of the model"),
    "num_latents": (int, "the number of continuous thoughts of a CODI model"),
    "n": (int, "the number of problems, pairs or samples"),
    "method": (str, "the probe method or intervention method"),
    "target": (str, "what a probe predicts"),
}


def _checked(key: str, value: Any) -> Any:
    if key not in TYPED_KEYS or value is None:
        return value
    kind, meaning = TYPED_KEYS[key]
    if kind is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if kind is str and isinstance(value, str):
        return value
    raise TypeError(f"grid config {key!r} must be {'an int' if kind is int else 'a str'} or None ({meaning}); "
                    f"got {value!r} ({type(value).__name__})")


class GridConfig(dict):
    """A dict with typed well-known keys (`TYPED_KEYS`), readable as attributes: `.kind`, `.model`, `.n_layers`,
    `.d_model`, `.num_latents`, `.n`, `.method`, `.target` (None when absent). Any other key is free.

    >>> GridConfig({"method": "logreg", "folds": 5}).method
    'logreg'
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.update(*args, **kwargs)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, _checked(key, value))

    def update(self, *args: Any, **kwargs: Any) -> None:
        """dict.update, with the typed keys checked.

        >>> c = GridConfig(); c.update(n_layers=4); c.n_layers
        4
        """
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def setdefault(self, key: str, default: Any = None) -> Any:
        """dict.setdefault, with the typed keys checked.

        >>> GridConfig().setdefault("n", 3)
        3
        """
        if key not in self:
            self[key] = default
        return self[key]

    def copy(self) -> GridConfig:
        """A shallow copy that is still a GridConfig.

        >>> type(GridConfig(n=1).copy()).__name__
        'GridConfig'
        """
        return GridConfig(self)

    def __getattr__(self, name: str) -> Any:
        if name in TYPED_KEYS:
            return self.get(name)
        raise AttributeError(f"GridConfig has no attribute {name!r}; read free keys as config[{name!r}]")

    def __reduce__(self):
        return (GridConfig, (dict(self),))
