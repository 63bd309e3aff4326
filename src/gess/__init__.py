"""gess: generalized fMRI-to-image reconstruction (GESS, Fang, Zheng, Pan, NeurIPS 2023).

Data flows one way: ``gess.data`` -> ``gess.encoders`` -> ``gess.decoding`` (M_c, M_s,
M_g) -> ``gess.generation`` (CS, GG) -> ``gess.evaluation`` -> ``gess.report``;
``gess.stages`` is the one layer the command line and ``gess run`` call
(docs/architecture.md).
"""
from gess.errors import GessInputError, MissingWeightsError

__all__ = ["__version__", "GessInputError", "MissingWeightsError", "fit", "decode", "GESSDecoder"]


def __getattr__(name):  # heavy stages load on first use, so `import gess` stays fast
    if name == "__version__":  # pyproject.toml declares it; read from the package metadata
        from gess.persistence import version

        return version()
    if name in ("fit", "decode"):
        from gess import stages

        return getattr(stages, name)
    if name == "GESSDecoder":
        from gess.decoding import GESSDecoder

        return GESSDecoder
    raise AttributeError(name)
