"""gess: generalized fMRI-to-image reconstruction (GESS, Fang, Zheng, Pan, NeurIPS 2023)."""
__version__ = "0.1.0"

from gess.errors import GessInputError, MissingWeightsError  # noqa: E402

__all__ = ["__version__", "GessInputError", "MissingWeightsError"]
