"""Evaluation with the field's exact protocols (docs/evaluation.md); metrics live in one registry (registry.py)."""
from gess.correlation import correlation_matrix, paired_correlation
from gess.evaluation.identification import two_way_all_pairs, two_way_random
from gess.evaluation.metrics import PROTOCOLS, evaluate, pixcorr, rmse_matrix, spectral_angle, ssim
from gess.evaluation.registry import (METRICS, Metric, MetricContext, MetricUnavailable, get_metric, metrics_for,
                                      register_metric, unregister_metric)

__all__ = ["correlation_matrix", "paired_correlation", "two_way_all_pairs", "two_way_random", "evaluate", "PROTOCOLS", "pixcorr", "ssim",
           "spectral_angle", "rmse_matrix", "METRICS", "Metric", "MetricContext", "MetricUnavailable", "get_metric",
           "metrics_for", "register_metric", "unregister_metric"]
