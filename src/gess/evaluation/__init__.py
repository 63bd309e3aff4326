"""Evaluation with the field's exact protocols (docs/evaluation.md)."""
from gess.evaluation.identification import correlation_matrix, paired_correlation, two_way_all_pairs, two_way_random
from gess.evaluation.metrics import PROTOCOLS, evaluate, pixcorr, rmse_matrix, spectral_angle, ssim

__all__ = ["correlation_matrix", "paired_correlation", "two_way_all_pairs", "two_way_random", "evaluate", "PROTOCOLS", "pixcorr", "ssim",
           "spectral_angle", "rmse_matrix"]
