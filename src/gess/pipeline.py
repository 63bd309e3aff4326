"""Stages chained over files: decoded outputs -> generator -> a directory of PNGs with a manifest."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gess.errors import GessInputError
from gess.io import atomic_path, read_json, write_json

MANIFEST = "manifest.json"


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def _check_encoders(decoder, backend) -> None:
    fitted = decoder.metadata_.get("encoder", {}).get("name")
    wanted = backend.encoder_name
    if fitted and wanted and fitted.split(":")[0] != wanted.split(":")[0]:
        raise GessInputError(None, "encoder", f"a model fitted with the generator's encoder '{wanted}'", f"'{fitted}'")


def reconstruct_to_directory(decoder, dataset, generator_dir, out, method="cs", steps=50, seed=0, guidance_scale=5.0,
                             batch_size=16, cs_preset="paper", cs_overrides=None, gg_scale=None, device="cpu",
                             progress=True) -> dict:
    """Decode the test fMRI, generate with ``method``, write one PNG per stimulus and ``manifest.json``.

    Images already listed in the manifest with the same settings are kept, not redone.
    """
    from gess import api
    from gess.encoders import get_encoder
    from gess.generation import CSOptions, GGOptions, reconstruct
    from gess.generation.backends import load_backend

    from gess.generation.reconstruct import METHODS

    if method not in METHODS:
        raise GessInputError(None, "method", f"one of {', '.join(METHODS)}", repr(method))
    out = Path(out)
    decoded, ids = api.decode(decoder, dataset)
    structure = decoder.metadata_.get("structure", {})
    if structure.get("name", "pixels") != "pixels":
        raise GessInputError(None, "structure", "structural predictions as blurred pixels", structure.get("name"))
    cs = CSOptions.preset(cs_preset, **(cs_overrides or {}))
    gg = GGOptions(**({"scale": gg_scale} if gg_scale is not None else {}))
    # the decoder's fingerprint is part of the settings: a refitted decoder invalidates its images
    settings = {"method": method, "steps": steps, "guidance_scale": guidance_scale, "generator": str(generator_dir),
                "decoder": decoder.metadata_.get("fingerprint") or decoder.get_params(),
                "cs": cs.to_dict() if method in ("cs", "cs-equal") else None, "gg": gg.to_dict() if method == "gg" else None}
    manifest = read_json(out / MANIFEST) if (out / MANIFEST).is_file() else []
    by_id = {m["stimulus_id"]: m for m in manifest}
    seeds = [seed + i for i in range(len(ids))]
    todo = [i for i, sid in enumerate(ids)
            if not (sid in by_id and (out / by_id[sid]["file"]).is_file() and by_id[sid].get("settings") == settings
                    and by_id[sid].get("seed") == seeds[i])]
    backend = None
    if todo:  # a finished directory never loads the generator's weights
        backend = load_backend(generator_dir, device=device)
        _check_encoders(decoder, backend)
    out.mkdir(parents=True, exist_ok=True)

    def write_batch(local_idx, images):
        for j, img in zip(local_idx, images):
            i = todo[j]
            name = f"{ids[i]}.png"
            _write_png(out / name, img)
            by_id[ids[i]] = {"stimulus_id": str(ids[i]), "file": name, "pi_c": float(decoded.pi_c[i]), "method": method,
                             "seed": seeds[i], "steps": steps, "settings": settings}
        write_json(out / MANIFEST, [by_id[s] for s in ids if s in by_id])

    if todo:
        idx = np.array(todo)
        encoder = get_encoder(backend.encoder_name, device=device) if method == "gg" else None
        reconstruct(backend, decoded.c_prime[idx], decoded.c[idx], decoded.s[idx], decoded.pi_c[idx], method, steps,
                    guidance_scale, seeds=[seeds[i] for i in todo], cs_options=cs, gg_options=gg, encoder=encoder,
                    batch_size=batch_size, on_batch=write_batch, progress=progress)
    write_json(out / MANIFEST, [by_id[s] for s in ids if s in by_id])
    return {"generated": len(todo), "skipped": len(ids) - len(todo)}


def write_images(out, ids, images: np.ndarray, pi_c: np.ndarray, method: str, seed: int, steps: int) -> None:
    """Write ``<id>.png`` per image and a manifest (for methods without a generator: structure, knn).

    These cost nothing to make, so they are always rewritten (atomically) and never stale.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for sid, img, p in zip(ids, images, pi_c):
        name = f"{sid}.png"
        _write_png(out / name, img[..., 0] if img.shape[-1] == 1 else img)
        manifest.append({"stimulus_id": str(sid), "file": name, "pi_c": float(p), "method": method, "seed": seed, "steps": steps})
    write_json(out / MANIFEST, manifest)
