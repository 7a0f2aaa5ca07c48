"""poslabels: the position-label grammar, one leaf with no dependencies that interp, probes, viz and app import.

    >>> import poslabels
    >>> poslabels.parse("q[-2]")
    Label(text='q[-2]', kind='question', index=-2, relative=True)
    >>> poslabels.latent_index("latent_3"), poslabels.latent_index("eot")
    (3, None)
    >>> poslabels.run_order(["resp_0", "latent_1", "bot", "q[-1]", "latent_0", "eot"])
    ['q[-1]', 'bot', 'latent_0', 'latent_1', 'eot', 'resp_0']
"""

from poslabels.grammar import (
    KINDS,
    Label,
    is_alias,
    is_latent,
    kind,
    latent_index,
    order_key,
    parse,
    run_order,
)

__all__ = ["KINDS", "Label", "parse", "kind", "latent_index", "is_latent", "is_alias", "order_key", "run_order"]
