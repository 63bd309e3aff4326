"""The reconstruction methods by name, and the one rule that gives each its structural weight.

Generator methods (the paper's ablation, Table 3):

``semantic``  c only (plain conditional sampling)                       -- c+LDM
``cs-equal``  c + s by CS with pi_s = 0.5 for every sample              -- c+s+CS
``cs``        c + s by CS gated by pi_s = max(floor, 1 - pi_c)          -- c+s+MOE+CS (GESS)
``gg``        c + s by gradient guidance gated the same way             -- c+s+MOE+GG

Baselines that need no generator: ``structure`` (M_s's output as an image) and
``knn`` (the training image nearest the decoded embedding).

The floor (``SamplingOptions.min_structure_weight``) acts on the gated methods only:

* for ``cs`` it is the least share of the low frequencies taken from the structural
  reference (without it, the conformal pi_c of the most typical samples reaches 1
  and CS switches off; docs/generation.md gives what that cost on held-out folds);
* for ``gg`` it is the least weight of the structural loss; the semantic loss keeps
  its weight pi_c.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

GENERATOR_METHODS = ("semantic", "cs-equal", "cs", "gg")
BASELINE_METHODS = ("structure", "knn")
METHODS = BASELINE_METHODS + GENERATOR_METHODS
CS_METHODS = ("cs-equal", "cs")
GATED_METHODS = ("cs", "gg")
GeneratorMethod = Literal[GENERATOR_METHODS]
Method = Literal[METHODS]


def structure_weight(method: str, pi_c, min_structure_weight: float = 0.0) -> np.ndarray:
    """pi_s per sample for ``method``: 0 (semantic), 0.5 (cs-equal), max(floor, 1 - pi_c) (cs, gg)."""
    pi_c = np.asarray(pi_c, np.float32)
    if method == "semantic":
        return np.zeros_like(pi_c)
    if method == "cs-equal":
        return np.full_like(pi_c, 0.5)
    if method in GATED_METHODS:
        return np.maximum(np.float32(min_structure_weight), 1.0 - pi_c)
    raise ValueError(f"no structural weight for method {method!r}")
