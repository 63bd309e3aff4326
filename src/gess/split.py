"""The generalized split (paper 4.5): cluster the embeddings, cut the cluster graph in two.

Embed all images, K-means into ``n_clusters``, build a complete graph over the
cluster centres weighted by cosine similarity, and cut it in two so that the
two sides share as little similarity as possible; each image follows its
cluster. A bare minimum cut (Stoer-Wagner) tends to isolate one small cluster
(26 of 1000 images on imagenet-sample), so the default is a balanced cut
(Kernighan-Lin bisection), and ``min_test_fraction`` rebalances any cut by
moving, one at a time, the cluster that adds the least cut weight.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np

from gess.errors import GessInputError
from gess.io import claim_output_file, png_text

METHODS = ("kernighan-lin", "stoer-wagner", "random")


@dataclass
class GeneralizedSplit:
    train: list[str]
    test: list[str]
    clusters: list[int]           # cluster of every image, in input order
    ids: list[str]                # input order
    cluster_sides: list[str]      # "train" or "test" per cluster
    cut_weight: float
    method: str
    params: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "train": self.train, "test": self.test,
            "clusters": {"assignment": dict(zip(self.ids, self.clusters)), "sides": self.cluster_sides},
            "cut_weight": self.cut_weight, "method": self.method, "params": self.params,
            "sizes": {"train": len(self.train), "test": len(self.test)},
        }


def cosine_graph(centres: np.ndarray) -> nx.Graph:
    """Complete graph over cluster centres, edge weight = cosine similarity (clipped at 0)."""
    unit = centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    sim = np.clip(unit @ unit.T, 0.0, None)
    g = nx.Graph()
    g.add_nodes_from(range(len(centres)))
    for i in range(len(centres)):
        for j in range(i + 1, len(centres)):
            g.add_edge(i, j, weight=float(sim[i, j]))
    return g


def cut_weight(graph: nx.Graph, side: set[int]) -> float:
    return float(nx.cut_size(graph, side, weight="weight"))


def _rebalance(graph: nx.Graph, small: set[int], sizes: np.ndarray, min_count: int) -> set[int]:
    """Grow ``small`` by the cluster whose move adds the least cut weight until it holds ``min_count`` images."""
    small = set(small)
    while sizes[list(small)].sum() < min_count:
        others = [c for c in graph.nodes if c not in small]
        if len(others) <= 1:
            break
        best = min(others, key=lambda c: cut_weight(graph, small | {c}))
        small.add(best)
    return small


def check_split_options(n_clusters: int = 20, method: str = "kernighan-lin", train_side: str = "larger",
                        min_test_fraction: float = 0.0, seed: int = 0) -> None:
    """Bad input naming the first of :func:`generalized_split`'s options that is out of its range
    (``gess split`` checks them before it encodes any image)."""
    if method not in METHODS:
        raise GessInputError(None, "method", f"one of {METHODS}", repr(method))
    if train_side not in ("larger", "smaller"):
        raise GessInputError(None, "train_side", "'larger' or 'smaller'", repr(train_side))
    _check_whole(n_clusters, "n_clusters", 2, "at least 2 clusters (a cut needs two sides)")
    _check_whole(seed, "seed", 0, "a seed, a whole number at least 0")
    if isinstance(min_test_fraction, bool) or not isinstance(min_test_fraction, (int, float, np.floating)) or \
            not 0 <= min_test_fraction < 1:  # NaN fails too
        raise GessInputError(None, "min_test_fraction", "a share of the images in [0, 1)", repr(min_test_fraction))


def _check_whole(value, name: str, low: int, expected: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise GessInputError(None, name, expected, repr(value))


def generalized_split(embeddings: np.ndarray, ids, n_clusters: int = 20, method: str = "kernighan-lin",
                      train_side: str = "larger", min_test_fraction: float = 0.0, seed: int = 0) -> GeneralizedSplit:
    """Split images into train and test so that test semantics lie outside the training semantics.

    Parameters
    ----------
    embeddings : (n, d) image embeddings; ids : (n,) image ids.
    method : "kernighan-lin" (balanced, default), "stoer-wagner" (the bare minimum
        cut) or "random" (a random split of the same sizes as the balanced cut, the control).
    train_side : "larger" or "smaller" side of the cut trains.
    min_test_fraction : the test side is grown (least added cut weight first) until
        it holds at least this fraction of the images.

    Examples
    --------
    >>> emb = np.concatenate([np.eye(4)[[0]*10], np.eye(4)[[1]*10], np.eye(4)[[2]*10], np.eye(4)[[3]*10]])
    >>> s = generalized_split(emb + 0.01, [str(i) for i in range(40)], n_clusters=4)
    >>> len(s.train) + len(s.test)
    40
    """
    from sklearn.cluster import KMeans

    check_split_options(n_clusters, method, train_side, min_test_fraction, seed)
    ids = [str(i) for i in ids]
    emb = np.asarray(embeddings, np.float64)
    if len(ids) != len(emb):
        raise GessInputError(None, "ids", f"{len(emb)} ids (one per embedding)", f"{len(ids)}")
    k = min(n_clusters, len(emb))
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(emb)
    labels = km.labels_
    sizes = np.bincount(labels, minlength=k)
    graph = cosine_graph(km.cluster_centers_)

    if method == "stoer-wagner":
        _, (part_a, part_b) = nx.stoer_wagner(graph, weight="weight")
        part_a = set(part_a)
    else:
        part_a, _ = nx.algorithms.community.kernighan_lin_bisection(graph, weight="weight", seed=seed)
        part_a = set(part_a)
    part_b = set(graph.nodes) - part_a
    count_a, count_b = sizes[list(part_a)].sum(), sizes[list(part_b)].sum()
    larger, smaller = (part_a, part_b) if count_a >= count_b else (part_b, part_a)
    test_clusters = smaller if train_side == "larger" else larger
    if min_test_fraction > 0:
        test_clusters = _rebalance(graph, test_clusters, sizes, int(np.ceil(min_test_fraction * len(ids))))
    test_mask = np.isin(labels, list(test_clusters))
    weight = cut_weight(graph, test_clusters)
    if method == "random":
        rng = np.random.default_rng(seed)
        test_mask = np.zeros(len(ids), bool)
        test_mask[rng.choice(len(ids), int(np.isin(labels, list(test_clusters)).sum()), replace=False)] = True
        weight = float("nan")
    sides = ["test" if c in test_clusters else "train" for c in range(k)]
    return GeneralizedSplit(
        train=[i for i, t in zip(ids, test_mask) if not t], test=[i for i, t in zip(ids, test_mask) if t],
        clusters=labels.tolist(), ids=ids, cluster_sides=sides, cut_weight=weight, method=method,
        params={"n_clusters": k, "train_side": train_side, "min_test_fraction": min_test_fraction, "seed": seed},
    )


def nearest_train_similarity(embeddings: np.ndarray, ids, split: GeneralizedSplit) -> float:
    """Mean over test images of the cosine similarity to their nearest training image."""
    index = {s: i for i, s in enumerate(str(x) for x in ids)}
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    tr = unit[[index[s] for s in split.train]]
    te = unit[[index[s] for s in split.test]]
    return float((te @ tr.T).max(1).mean())


SPLIT_KIND = "split"
FIGURE_KIND = "split figure"


def claim_split_files(out: str | Path) -> tuple[Path, Path]:
    """``out`` (the split's JSON) and the figure beside it (``.png``), refused before any image is encoded
    when either is a file gess did not write."""
    out = Path(out)
    if out.suffix.lower() == ".png":
        raise GessInputError(out, "--out", "a JSON path (the figure is written beside it as .png)", "a .png path")
    figure = out.with_suffix(".png")
    claim_output_file(out, SPLIT_KIND, legacy=_older_split)
    claim_output_file(figure, FIGURE_KIND, legacy=lambda path: _older_split(out) and _matplotlib_png(path))
    return out, figure


def _older_split(path: Path) -> bool:
    """A split.json of a gess from before files carried their kind: its keys are those of :meth:`GeneralizedSplit.to_json`."""
    from gess.io import read_json

    try:
        content = read_json(path)
    except (GessInputError, OSError, ValueError):
        return False
    return isinstance(content, dict) and {"train", "test", "clusters", "cut_weight", "method", "sizes"} <= set(content)


def _matplotlib_png(path: Path) -> bool:
    return png_text(path).get("Software", "").startswith("Matplotlib")
