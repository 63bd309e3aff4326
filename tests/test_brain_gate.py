"""The brain gate (``gate: brain``): evidence from the measured response, calibrated on training statistics."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gess.decoding import GESSDecoder
from gess.decoding.gating import BrainGate, GateInputs, make_gate

BRAIN_GATES = ("brain", "brain-residual")  # the residual gate reads the semantic cue alone (structure ignored)
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
seeds = st.integers(0, 2**31 - 1)


def _gate_inputs(rng, n, v, d, side, constant_structure=False):
    z = rng.normal(size=(n, v)).astype(np.float32)
    emb = rng.normal(size=(n, d)).astype(np.float32)
    structure = np.full((n, side, side, 1), 0.5, np.float32) if constant_structure else rng.random((n, side, side, 1))
    train = GateInputs(z, emb, structure_targets=structure)
    cross = GateInputs(z, emb + 0.3 * rng.normal(size=emb.shape), structure=structure + 0.1 * rng.normal(size=structure.shape))
    return train, emb, cross


@pytest.mark.parametrize("name", BRAIN_GATES)
@SETTINGS
@given(seed=seeds, n=st.integers(12, 30), v=st.integers(3, 15), d=st.integers(1, 5), side=st.integers(1, 4),
       scale=st.floats(1e-3, 1e3), constant=st.booleans())
def test_pi_c_is_in_unit_interval_and_finite(name, seed, n, v, d, side, scale, constant):
    rng = np.random.default_rng(seed)
    train, emb, cross = _gate_inputs(rng, n, v, d, side, constant)
    gate = make_gate(name).fit(train, emb, cross)
    probe = GateInputs(scale * rng.normal(size=(7, v)), scale * rng.normal(size=(7, d)),
                       structure=scale * rng.normal(size=(7, side, side, 1)))
    pi = gate.pi_c(probe)
    assert pi.shape == (7,) and np.isfinite(pi).all()
    assert ((pi >= 0) & (pi <= 1)).all()


@pytest.fixture(scope="module", params=BRAIN_GATES)
def brain_decoder(request):
    rng = np.random.default_rng(0)
    X, C, S = rng.normal(size=(40, 20)), rng.normal(size=(40, 5)), rng.random((40, 3, 3, 1))
    return GESSDecoder(gate=request.param, n_neighbors=3, alignment="reference").fit(X, C, S)


@SETTINGS
@given(seed=seeds, others=st.integers(1, 6))
def test_a_samples_pi_c_ignores_the_other_samples(brain_decoder, seed, others):
    X = np.random.default_rng(seed).normal(size=(1 + others, 20))
    alone, together = brain_decoder.decode(X[:1]), brain_decoder.decode(X)
    assert np.isclose(alone.pi_c[0], together.pi_c[0])
    gate, z = brain_decoder.gate_, brain_decoder._standardize(X)
    # the gate alone, on the same inputs: a row's evidence is its own
    batch = gate.typicality(GateInputs(z, together.c_raw, structure=together.s))
    single = gate.typicality(GateInputs(z[:1], together.c_raw[:1], structure=together.s[:1]))
    assert np.isclose(single[0], batch[0], rtol=1e-9, atol=1e-12)
    # end to end: the float32 decodes of one row and of a batch differ by BLAS rounding (~1e-6 in s), which
    # the standardised structure features amplify (up to 1.5e-5 in typicality over 900 probes), no more
    end_to_end = gate.typicality(GateInputs(z[:1], alone.c_raw, structure=alone.s))
    assert np.isclose(end_to_end[0], batch[0], rtol=0, atol=1e-4)


def test_save_load_round_trip(tmp_path, brain_decoder):
    X = np.random.default_rng(1).normal(size=(6, 20))
    before = brain_decoder.decode(X)
    brain_decoder.save(tmp_path / "m")
    again = GESSDecoder.load(tmp_path / "m")
    assert again.gate_.config() == brain_decoder.gate_.config() and isinstance(again.gate_, BrainGate)
    assert again.gate_.name == brain_decoder.gate_.name
    assert bool(again.gate_.uses_structure_) == (again.gate_.name == "brain")
    np.testing.assert_array_equal(again.decode(X).pi_c, before.pi_c)


def test_pi_c_follows_which_cue_explains_the_response():
    """Semantic voxels driven by the sample's semantic cue and structural ones by another image: high pi_c;
    the other way round: low."""
    rng = np.random.default_rng(0)
    n, d, side, v = 120, 6, 4, 30
    A, B = rng.normal(size=(d, v)), rng.normal(size=(side * side, v))

    def response(c, s):
        return np.concatenate([c @ A, s.reshape(len(s), -1) @ B], axis=1) + 0.3 * rng.normal(size=(len(c), 2 * v))

    C, S = rng.normal(size=(n, d)), rng.random((n, side, side, 1))
    z = response(C, S)
    gate = make_gate("brain").fit(GateInputs(z, C, structure_targets=S), C,
                                  GateInputs(z, C + 0.2 * rng.normal(size=C.shape), structure=S + 0.05 * rng.normal(size=S.shape)))
    c, s = rng.normal(size=(20, d)), rng.random((20, side, side, 1))
    c_other, s_other = rng.normal(size=(20, d)), rng.random((20, side, side, 1))
    semantic_explains = gate.pi_c(GateInputs(response(c, s_other), c, structure=s))
    structure_explains = gate.pi_c(GateInputs(response(c_other, s), c, structure=s))
    assert (semantic_explains > structure_explains).mean() >= 0.9
    assert semantic_explains.mean() > 0.6 > 0.4 > structure_explains.mean()


def test_without_structure_it_reads_the_semantic_cue_alone():
    rng = np.random.default_rng(0)
    z, C = rng.normal(size=(30, 8)), rng.normal(size=(30, 3))
    gate = make_gate("brain").fit(GateInputs(z, C), C, GateInputs(z, C + 0.1))
    assert not bool(gate.uses_structure_)
    assert np.isfinite(gate.pi_c(GateInputs(z[:4], C[:4]))).all()
    fitted = make_gate("brain").fit(*_gate_inputs(rng, 30, 8, 3, 2))
    with pytest.raises(ValueError, match="structure"):
        fitted.pi_c(GateInputs(z[:4], C[:4]))


# --- brain-residual: minus the squared error of the semantic encoding model's prediction


def test_residual_gate_is_low_where_the_decoded_semantics_leave_the_response_unexplained():
    """Responses that the training semantics drive get high pi_c; responses off their span, decoded by the
    same ridge toward familiar semantics, get low pi_c."""
    rng = np.random.default_rng(0)
    n, d, v = 150, 6, 40
    A = rng.normal(size=(d, v))
    C = rng.normal(size=(n, d))
    z = C @ A + 0.5 * rng.normal(size=(n, v))
    ridge = np.linalg.solve(z.T @ z + 10 * np.eye(v), z.T @ C)  # the decoder the gate will be handed
    cross = z @ ridge + 0.1 * rng.normal(size=C.shape)
    gate = make_gate("brain-residual").fit(GateInputs(z, z @ ridge), C, GateInputs(z, cross))
    familiar = rng.normal(size=(30, d)) @ A + 0.5 * rng.normal(size=(30, v))
    off_span = 3 * rng.normal(size=(30, v))  # a response the semantic voxels' tuning never produced
    inside, outside = gate.pi_c(GateInputs(familiar, familiar @ ridge)), gate.pi_c(GateInputs(off_span, off_span @ ridge))
    assert inside.mean() > 0.3 > 0.1 > outside.mean()


def _repeated_test_dataset(rng, repeats: int):
    """Training: one trial per stimulus; test: ``repeats`` noisy trials of each stimulus (response = C A + 3 noise)."""
    from gess.data.dataset import Dataset, Split

    n_train, n_test, d, v = 120, 20, 5, 30
    A = rng.normal(size=(d, v))
    C = rng.normal(size=(n_train + n_test, d))

    def trials(rows, k):
        return np.concatenate([C[rows] @ A + 3 * rng.normal(size=(len(rows), v)) for _ in range(k)])

    images = rng.integers(0, 255, (n_train + n_test, 4, 4, 1), dtype=np.uint8)
    ids = np.array([f"s{i}" for i in range(n_train + n_test)])
    train_rows, test_rows = np.arange(n_train), np.arange(n_train, n_train + n_test)
    train = Split(trials(train_rows, 1).astype(np.float32), ids[train_rows], images[train_rows], ids[train_rows])
    test = Split(trials(test_rows, repeats).astype(np.float32), np.tile(ids[test_rows], repeats), images[test_rows],
                 ids[test_rows])
    return Dataset(train, test, name="repeats"), C[train_rows]


def test_residual_gate_scores_repeated_test_trials_one_by_one():
    """Averaging repeats shrinks the noise, hence the squared error of every stimulus: scored on the average, pi_c
    would crowd near 1; scored trial by trial, as its reference was, it stays spread over (0, 1]."""
    from gess.api import decode

    rng = np.random.default_rng(0)
    dataset, C = _repeated_test_dataset(rng, repeats=8)
    S = rng.random((len(C), 2, 2, 1))
    model = GESSDecoder(gate="brain-residual", n_neighbors=3, alignment="reference").fit(dataset.train.fmri, C, S)
    decoded, ids = decode(model, dataset)
    on_average = model.decode(dataset.test.averaged().fmri).pi_c
    assert on_average.mean() > 0.9  # the saturation the per-trial scoring avoids
    assert 0.2 < decoded.pi_c.mean() < 0.8
    # one stimulus's pi_c depends on its own trials only
    first = dataset.test.image_index() == 0
    alone = model.pi_c_over_trials(dataset.test.fmri[first], np.zeros(first.sum(), np.int64))
    assert np.isclose(alone[0], decoded.pi_c[list(ids).index(dataset.test.stimulus_ids[0])])


def test_decode_scores_repeated_trials_once(monkeypatch):
    """With repeats and a single-trial gate, decode scores the gate on the trials only (not also on the averages),
    and a pi_c handed to GESSDecoder.decode is what it returns."""
    from gess.api import decode

    rng = np.random.default_rng(1)
    dataset, C = _repeated_test_dataset(rng, repeats=3)
    model = GESSDecoder(gate="brain-residual", n_neighbors=3, alignment="reference").fit(
        dataset.train.fmri, C, rng.random((len(C), 2, 2, 1)))
    calls = []
    original = type(model.gate_).typicality
    monkeypatch.setattr(type(model.gate_), "typicality", lambda self, inputs: calls.append(len(inputs.fmri)) or original(self, inputs))
    decoded, _ = decode(model, dataset)
    assert calls == [len(dataset.test.trial_ids)]
    given = np.linspace(0, 1, len(dataset.test.stimulus_ids))
    assert np.array_equal(model.decode(dataset.test.averaged().fmri, pi_c=given).pi_c, given)
    with pytest.raises(ValueError, match="pi_c has 2 values"):
        model.decode(dataset.test.averaged().fmri, pi_c=given[:2])
