"""One persistence rule (config.json + model.safetensors + a save id) and one device rule, at tiny sizes."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from gess.decoding import GESSDecoder
from gess.decoding.gating import GATES, Gate, GateInputs, make_gate
from gess.decoding.semantic import SemanticDecoder
from gess.decoding.structural import StructuralDecoder, StructuralSpace
from gess.decoding.trust import BrainConsistency
from gess.device import get_device, set_device, using_device
from gess.errors import GessInputError, MissingWeightsError
from gess.io import arrays_metadata, load_arrays, save_arrays, write_json
from gess.persistence import (CONFIG_NAME, WEIGHTS_NAME, Component, load_component, nest, save_component, unnest,
                              version)


@pytest.fixture(autouse=True)
def _process_device(monkeypatch):
    monkeypatch.delenv("GESS_DEVICE", raising=False)
    set_device(None)
    yield
    set_device(None)


def _data(seed=0, n=30, v=20, d=6, side=4):
    rng = np.random.default_rng(seed)
    return rng, rng.normal(size=(n, v)), rng.normal(size=(n, d)), rng.random((n, side, side, 1))


# ------------------------------------------------------------------ the rule itself
def test_save_component_round_trip_and_the_files_it_writes(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b.c": np.array([1, 2], np.int64)}
    sid = save_component(tmp_path / "x", "Thing", {"size": 3, "shape": [2, 3]}, arrays)
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    config = json.loads((tmp_path / "x" / CONFIG_NAME).read_text())
    assert config == {"_class_name": "Thing", "gess_version": version(), "size": 3, "shape": [2, 3], "save_id": sid}
    assert arrays_metadata(tmp_path / "x" / WEIGHTS_NAME) == {"save_id": sid}
    loaded_config, loaded = load_component(tmp_path / "x", "Thing")
    assert loaded_config == config
    assert set(loaded) == set(arrays) and all(np.array_equal(loaded[k], arrays[k]) for k in arrays)


def test_the_save_id_is_the_weights_digest_so_equal_saves_write_equal_bytes(tmp_path):
    arrays = {"w": np.ones((3, 3), np.float32)}
    assert save_component(tmp_path / "a", "T", {}, arrays) == save_component(tmp_path / "b", "T", {"other": 1}, arrays)
    assert (tmp_path / "a" / WEIGHTS_NAME).read_bytes() == (tmp_path / "b" / WEIGHTS_NAME).read_bytes()
    assert save_component(tmp_path / "c", "T", {}, {"w": np.zeros((3, 3), np.float32)}) != save_component(
        tmp_path / "d", "T", {}, arrays)


def test_weights_of_another_save_are_refused_naming_the_file(tmp_path):
    save_component(tmp_path / "a", "T", {}, {"w": np.ones(3, np.float32)})
    save_component(tmp_path / "b", "T", {}, {"w": np.zeros(3, np.float32)})
    (tmp_path / "a" / WEIGHTS_NAME).write_bytes((tmp_path / "b" / WEIGHTS_NAME).read_bytes())
    with pytest.raises(GessInputError, match=r"model\.safetensors.*weights of another save \(an interrupted `gess fit`\? "
                                             r"run it again\)"):
        load_component(tmp_path / "a", "T")


def test_files_of_earlier_gess_versions_still_load(tmp_path):
    """A random save id (gess 0.2's decoders) or none at all (its priors) is accepted as it was."""
    for name, sid in (("uuid", "0123456789abcdef0123456789abcdef"), ("none", None)):
        save_arrays(tmp_path / name / WEIGHTS_NAME, {"w": np.ones(2, np.float32)}, {"save_id": sid} if sid else None)
        write_json(tmp_path / name / CONFIG_NAME, {"_class_name": "T", **({"save_id": sid} if sid else {})})
        config, arrays = load_component(tmp_path / name, "T")
        assert np.array_equal(arrays["w"], np.ones(2, np.float32))


def test_missing_files_and_other_classes_are_bad_input(tmp_path):
    with pytest.raises(GessInputError, match="config.json and model.safetensors"):
        load_component(tmp_path / "nothing", "T")
    with pytest.raises(MissingWeightsError):
        load_component(tmp_path / "nothing", "T", missing=MissingWeightsError("a T", str(tmp_path), "make one"))
    save_component(tmp_path / "a", "Other", {}, {"w": np.ones(1, np.float32)})
    with pytest.raises(GessInputError, match="_class_name"):
        load_component(tmp_path / "a", "T")
    with pytest.raises(ValueError, match="save_id"):
        save_component(tmp_path / "b", "T", {"save_id": "mine"}, {})


def test_nest_and_unnest_are_inverse_and_keep_prefixes_apart():
    arrays = {**nest("encoder", {"w": 1, "b": 2}), **nest("encoder_opt", {"w": 3}), "top": 4}
    assert arrays == {"encoder.w": 1, "encoder.b": 2, "encoder_opt.w": 3, "top": 4}
    assert unnest("encoder", arrays) == {"w": 1, "b": 2}
    assert unnest("structural.ss", nest("structural.ss", {"decoder.x": 5})) == {"decoder.x": 5}


def test_a_component_config_is_its_constructor_arguments():
    class Thing(Component):
        not_config = ("loaded",)

        def __init__(self, size: int, shape=(2, 3), loaded=None):
            self.size, self.shape, self.loaded = size, shape, loaded

    thing = Thing(4)
    thing.weights_ = np.ones(2)
    assert thing.config() == {"size": 4, "shape": [2, 3]}
    again = Thing.from_state(thing.config(), thing.state())
    assert again.size == 4 and np.array_equal(again.weights_, thing.weights_)


# ------------------------------------------------------------------ every saved component
@pytest.mark.parametrize("name", sorted(GATES))
def test_gate_round_trip(name):
    rng, X, C, _ = _data()
    gate = make_gate(name, n_components=5) if name != "prediction-knn" else make_gate(name)
    gate.fit(GateInputs(X, C), C, GateInputs(X, C + 0.1))
    again = Gate.from_state(json.loads(json.dumps(gate.config())), gate.state())
    assert type(again) is type(gate) and again.config() == gate.config()
    probe = GateInputs(rng.normal(size=(5, 20)), rng.normal(size=(5, 6)))
    np.testing.assert_array_equal(again.pi_c(probe), gate.pi_c(probe))


def test_trust_and_structural_space_round_trip():
    rng, X, C, _ = _data(n=40)
    trust = BrainConsistency(n_voxels=10).fit(X.astype(np.float32), C)
    again = BrainConsistency.from_state(json.loads(json.dumps(trust.config())), trust.state())
    np.testing.assert_array_equal(again.score(C[:5], X[:5]), trust.score(C[:5], X[:5]))
    space = StructuralSpace(16, grey=True)
    assert StructuralSpace.from_config(space.config()).config() == space.config()
    assert StructuralSpace.from_config({"size": 8, "name": "pixels"}).kind == "pixels"  # gess 0.1's config


def test_semantic_and_structural_decoders_round_trip():
    rng, X, C, S = _data()
    semantic = SemanticDecoder(alpha=1.0, n_neighbors=3).fit(X, C, cross_fitted=C + 0.1)
    again = SemanticDecoder(alpha=1.0, n_neighbors=3).load_state(semantic.state(), semantic.ridge_.alpha_)
    for a, b in zip(again.decode(X[:5]), semantic.decode(X[:5])):
        np.testing.assert_array_equal(a, b)
    structural = StructuralDecoder(alpha=2.0).fit(X, S)
    again = StructuralDecoder().load_state(structural.state(), 2.0, structural.target_shape_)
    np.testing.assert_array_equal(again.predict(X[:5]), structural.predict(X[:5]))


def test_self_supervised_ms_round_trip():
    from gess.decoding.selfsupervised import SelfSupervisedOptions, SelfSupervisedStructuralDecoder

    rng, X, _, S = _data(side=8)
    opts = SelfSupervisedOptions(steps=2, encoder_steps=2, batch_size=4, width=4)
    model = SelfSupervisedStructuralDecoder(opts).fit(X.astype(np.float32), S.astype(np.float32),
                                                      np.zeros((20, 64), np.float32), np.zeros(64, np.float32))
    again = SelfSupervisedStructuralDecoder.from_state(json.loads(json.dumps(model.config())), model.state())
    np.testing.assert_array_equal(again.predict(X[:4]), model.predict(X[:4]))


@pytest.mark.parametrize("structural_decoder", ["ridge", "self-supervised"])
def test_gess_decoder_round_trip_writes_the_same_bytes_twice(tmp_path, structural_decoder):
    rng, X, C, S = _data(side=6)
    model = GESSDecoder(n_neighbors=3, structural_decoder=structural_decoder, device="cpu",
                        self_supervised=dict(steps=2, encoder_steps=2, batch_size=4, width=4)).fit(X, C, S)
    model.save(tmp_path / "a")
    model.save(tmp_path / "b")
    assert (tmp_path / "a" / WEIGHTS_NAME).read_bytes() == (tmp_path / "b" / WEIGHTS_NAME).read_bytes()
    config = json.loads((tmp_path / "a" / CONFIG_NAME).read_text())
    assert config["_class_name"] == "GESSDecoder" and config["gess_version"] == version()
    assert config["save_id"] == arrays_metadata(tmp_path / "a" / WEIGHTS_NAME)["save_id"]
    names = set(load_arrays(tmp_path / "a" / WEIGHTS_NAME))
    assert {"voxel_mean", "voxel_std", "semantic.coef", "semantic.manifold", "trust.coef"} <= names
    structural = "structural.ss." if structural_decoder == "self-supervised" else "structural.coef"
    assert any(n.startswith(structural) for n in names)
    loaded = GESSDecoder.load(tmp_path / "a")
    assert loaded.get_params() == model.get_params()
    before, after = model.decode(X[:5]), loaded.decode(X[:5])
    for field in ("c_raw", "c_prime", "c", "s", "pi_c"):
        np.testing.assert_array_equal(getattr(after, field), getattr(before, field))


def test_gess_decoder_refuses_weights_of_another_save(tmp_path):
    rng, X, C, S = _data()
    GESSDecoder(n_neighbors=3).fit(X, C, S).save(tmp_path / "a")
    GESSDecoder(n_neighbors=3, alpha_semantic=3.0).fit(X, C, S).save(tmp_path / "b")
    (tmp_path / "a" / WEIGHTS_NAME).write_bytes((tmp_path / "b" / WEIGHTS_NAME).read_bytes())
    with pytest.raises(GessInputError, match="another save") as exc:
        GESSDecoder.load(tmp_path / "a")
    assert exc.value.file == str(tmp_path / "a" / WEIGHTS_NAME)


def test_pixel_prior_round_trip_and_save_id(tmp_path):
    from gess.generation.backends.pixel import PixelBackend, PixelPrior

    torch.manual_seed(0)
    prior = PixelPrior(image_size=8, channels=1, cond_dim=4, block_out_channels=(8, 16), norm_num_groups=4)
    prior.save_pretrained_files(tmp_path / "p", extra={"fingerprint": "abc"})
    config = json.loads((tmp_path / "p" / CONFIG_NAME).read_text())
    assert config["_class_name"] == "PixelPrior" and config["fingerprint"] == "abc" and config["save_id"]
    loaded = PixelBackend.from_pretrained(tmp_path / "p").prior
    assert loaded.config == prior.config
    for k, v in prior.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    other = PixelPrior(image_size=8, channels=1, cond_dim=4, block_out_channels=(8, 16), norm_num_groups=4)
    other.save_pretrained_files(tmp_path / "q")
    (tmp_path / "p" / WEIGHTS_NAME).write_bytes((tmp_path / "q" / WEIGHTS_NAME).read_bytes())
    with pytest.raises(GessInputError, match="another save.*gess prior train"):
        PixelPrior.from_pretrained(tmp_path / "p")
    with pytest.raises(MissingWeightsError):
        PixelPrior.from_pretrained(tmp_path / "nothing")


def test_options_to_dict_is_one_rule():
    from gess.decoding.selfsupervised import SelfSupervisedOptions
    from gess.decoding.structural import StructureOptions
    from gess.generation import CSOptions, GGOptions, SamplingOptions
    from gess.generation.train import TrainOptions
    from gess.options import Options

    for cls in (CSOptions, GGOptions, SamplingOptions, TrainOptions, StructureOptions, SelfSupervisedOptions):
        options = cls()
        assert isinstance(options, Options)
        expected = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()}
        assert options.to_dict() == expected
    assert TrainOptions().to_dict()["block_out_channels"] == [32, 64, 64]


# ------------------------------------------------------------------ the version
def test_the_version_is_read_from_the_package_metadata(monkeypatch):
    import importlib.metadata

    import gess

    assert gess.__version__ == importlib.metadata.version("gess") == version()

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    version.cache_clear()
    try:
        assert version() == "0+unknown"
    finally:
        version.cache_clear()


# ------------------------------------------------------------------ the device
def test_the_process_device_defaults_to_cpu_and_reads_gess_device(monkeypatch):
    assert get_device() == "cpu"
    monkeypatch.setenv("GESS_DEVICE", "meta")
    assert get_device() == "meta"
    assert set_device("cpu") == "cpu" and get_device() == "cpu"  # a choice outranks the variable
    assert set_device(None) == "meta"


def test_unknown_devices_are_bad_input_naming_where_they_came_from(monkeypatch):
    with pytest.raises(GessInputError, match="field 'device'.*'gpu'"):
        set_device("gpu")
    assert get_device() == "cpu"  # a refused choice changes nothing
    monkeypatch.setenv("GESS_DEVICE", "gpu")
    with pytest.raises(GessInputError, match="GESS_DEVICE.*'gpu'"):
        get_device()
    monkeypatch.delenv("GESS_DEVICE")
    rng, X, C, S = _data()
    with pytest.raises(GessInputError, match="device"):
        GESSDecoder(device="gpu").fit(X, C, S)


def test_using_device_chooses_for_a_block_and_components_follow_it():
    from gess.encoders.base import ImageEncoder

    class Probe(ImageEncoder):
        def encode_tensor(self, images):
            return images

    with pytest.raises(RuntimeError):
        with using_device("meta"):
            assert get_device() == "meta"
            assert Probe().device == torch.device("meta")
            raise RuntimeError
    assert get_device() == "cpu" and Probe().device == torch.device("cpu")
    with using_device(None):
        assert get_device() == "cpu"
