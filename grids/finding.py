"""Finding: one result of an automatic check on a result grid (probe checks, patching notes).

    >>> from grids import Finding
    >>> f = Finding("identical_features", "latent_0 equals latent_1", "error", [(3, "latent_0")])
    >>> str(f)
    'ERROR identical_features: latent_0 equals latent_1 [L3/latent_0]'
    >>> Finding.from_dict(f.to_dict()) == f
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["Finding", "SEVERITIES"]

SEVERITIES = ("error", "warning", "info")


@dataclass
class Finding:
    """One result of the automatic checks, e.g. kind="identical_features", severity="error".

    `cells` lists the (layer, position) cells it concerns; empty means the whole grid.

    >>> Finding("no_effect", "clean and corrupt runs agree", "warning").cells
    []
    """

    kind: str
    message: str
    severity: str = "warning"
    cells: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"Finding severity {self.severity!r} is not one of {SEVERITIES}")
        self.cells = [(int(l_), str(p)) for l_, p in self.cells]

    def to_dict(self) -> dict:
        """JSON-able form (cells as [layer, position] lists).

        >>> Finding("x", "y", "info", [(0, "bot")]).to_dict()
        {'kind': 'x', 'message': 'y', 'severity': 'info', 'cells': [[0, 'bot']]}
        """
        d = asdict(self)
        d["cells"] = [[l_, p] for l_, p in self.cells]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Finding:
        """Inverse of `to_dict`.

        >>> Finding.from_dict({"kind": "x", "message": "y"}).severity
        'warning'
        """
        return cls(kind=d["kind"], message=d["message"], severity=d.get("severity", "warning"),
                   cells=[(int(c[0]), str(c[1])) for c in d.get("cells", [])])

    def __str__(self) -> str:
        where = ""
        if self.cells:
            shown = ", ".join(f"L{l_}/{p}" for l_, p in self.cells[:6])
            more = f" (+{len(self.cells) - 6} more)" if len(self.cells) > 6 else ""
            where = f" [{shown}{more}]"
        return f"{self.severity.upper()} {self.kind}: {self.message}{where}"
