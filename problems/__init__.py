"""problems: offline problem generators, a leaf that codi (training data) and probes (tasks) both import.

    >>> from problems import arithmetic
    >>> len(arithmetic(4, steps=(2, 3), seed=0))
    4
"""

from problems.arithmetic import Problem, arithmetic

__all__ = ["Problem", "arithmetic"]
