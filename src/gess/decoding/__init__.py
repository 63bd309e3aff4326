"""Decoders from voxels: M_c (semantic) and M_s (structural), both ridge regressions."""
from gess.decoding.ridge import Ridge, cross_fitted_predictions
from gess.decoding.semantic import SemanticDecoder, momentum_align
from gess.decoding.structural import StructuralDecoder

__all__ = ["Ridge", "SemanticDecoder", "StructuralDecoder", "momentum_align", "cross_fitted_predictions"]
