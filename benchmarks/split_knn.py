"""The generalized split against a random split, and the KNN baseline on both (paper Figure 4 argument).

    python benchmarks/split_knn.py [--data ../shared/data/imagenet-sample] [--snr 1.0] [--seeds 0 1 2]

1. Split sizes and the mean test-to-train nearest-neighbour cosine similarity
   (EfficientNet-Lite0) for the generalized split and a random split of the same sizes.
2. Simulated fMRI on each split; KNN returns the training image nearest the
   decoded embedding. Scored with the paper's 2-way identification (10 seeded
   random draws) on embedding distance, and all-pairs identification, for:
   KNN's retrieved image, GESS's decoded c' and c, and, as the ceiling, the
   true stimulus embedding of the nearest training image (the best any retrieval can do).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from gate_auroc import cached_embeddings, simulation_arguments  # noqa: E402

from gess.baselines import knn_indices  # noqa: E402
from gess.data.simulated import SimulatedFMRIModel, simulate_dataset  # noqa: E402
from gess.evaluation import two_way_all_pairs, two_way_random  # noqa: E402
from gess.evaluation.metrics import cosine_distance_matrix  # noqa: E402
from gess.decoding import GESSDecoder  # noqa: E402
from gess.split import generalized_split, nearest_train_similarity  # noqa: E402


def scores(truth: np.ndarray, pred: np.ndarray, seed: int) -> tuple[float, float]:
    return (float(two_way_random(cosine_distance_matrix(pred, truth), 10, seed).mean()),
            float(two_way_all_pairs(truth, pred).mean()))


def main():
    args = simulation_arguments().parse_args()
    t0 = time.time()
    images, ids, emb = cached_embeddings(Path(args.data), Path(args.cache))
    gen = generalized_split(emb, ids, n_clusters=20, method="kernighan-lin", seed=0)
    rnd = generalized_split(emb, ids, n_clusters=20, method="random", seed=0)
    sw = generalized_split(emb, ids, n_clusters=20, method="stoer-wagner", seed=0)
    print(f"bare Stoer-Wagner cut: {len(sw.train)}/{len(sw.test)} images, cut weight {sw.cut_weight:.1f}")
    print(f"balanced (Kernighan-Lin) cut: {len(gen.train)}/{len(gen.test)} images, cut weight {gen.cut_weight:.1f}")
    print(f"test-to-train nearest cosine similarity: generalized {nearest_train_similarity(emb, ids, gen):.3f}, "
          f"random split of the same sizes {nearest_train_similarity(emb, ids, rnd):.3f}")
    index = {s: i for i, s in enumerate(ids)}
    rows = {}
    for name, split in (("random", rnd), ("generalized", gen)):
        for seed in args.seeds:
            ds = simulate_dataset(images, ids, emb, split.train, split.test, SimulatedFMRIModel(snr=args.snr, seed=seed))
            c_tr = emb[[index[s] for s in ds.train.trial_ids]]
            c_te = emb[[index[s] for s in ds.test.stimulus_ids]]
            out = GESSDecoder().fit(ds.train.fmri, c_tr, np.zeros((len(c_tr), 1))).decode(ds.test.fmri)
            knn = c_tr[knn_indices(out.c_prime, c_tr)]
            ceiling = c_tr[knn_indices(c_te, c_tr)]
            for label, pred in (("KNN retrieved image", knn), ("GESS c' (aligned)", out.c_prime),
                                ("GESS c (re-projected)", out.c), ("nearest training image (ceiling)", ceiling)):
                rows.setdefault((name, label), []).append(scores(c_te, pred, seed))
    print(f"\n2-way identification on EfficientNet-Lite0 embedding distance, SNR {args.snr}, seeds {args.seeds}")
    print(f"{'split':12s} {'prediction':34s} {'paper (10 draws)':>17s} {'all pairs':>10s}")
    for (split, label), vals in rows.items():
        v = np.mean(vals, 0)
        print(f"{split:12s} {label:34s} {v[0]:17.3f} {v[1]:10.3f}")
    print(f"wall time {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
