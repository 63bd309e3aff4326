"""gess: generalized fMRI-to-image reconstruction (GESS, Fang, Zheng, Pan, NeurIPS 2023)."""
__version__ = "0.1.0"

from gess.errors import GessInputError, MissingWeightsError  # noqa: E402

__all__ = ["__version__", "GessInputError", "MissingWeightsError", "fit", "decode", "GESSDecoder"]


def __getattr__(name):  # heavy stages load on first use, so `import gess` stays fast
    if name in ("fit", "decode"):
        from gess import api

        return getattr(api, name)
    if name == "GESSDecoder":
        from gess.model import GESSDecoder

        return GESSDecoder
    raise AttributeError(name)
