"""Evaluation with the field's exact protocols (spec/metrics.md)."""
from gess.evaluation.identification import correlation_matrix, two_way_all_pairs, two_way_random

__all__ = ["correlation_matrix", "two_way_all_pairs", "two_way_random"]
