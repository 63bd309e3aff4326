"""The GESS decoders from voxels, one module each, and the estimator that joins them.

* ``semantic.py``  M_c: ridge to image embeddings, momentum alignment, re-projection onto the manifold
* ``structural.py`` M_s: its target space (blurred pixels or generator latents) and its ridge
* ``gating.py``    M_g: the per-sample semantic confidence pi_c
* ``decoders.py``  :class:`GESSDecoder`, the scikit-learn-style estimator over all three
* ``ridge.py``     the ridge solver they share
"""
from gess.decoding.decoders import Decoded, GESSDecoder
from gess.decoding.gating import GATES, GateInputs, make_gate, register_gate
from gess.decoding.ridge import Ridge, cross_fitted_predictions
from gess.decoding.semantic import SemanticDecoder, momentum_align
from gess.decoding.structural import StructuralDecoder, StructuralSpace

__all__ = ["GESSDecoder", "Decoded", "Ridge", "SemanticDecoder", "StructuralDecoder", "StructuralSpace", "GATES",
           "GateInputs", "make_gate", "register_gate", "momentum_align", "cross_fitted_predictions"]
