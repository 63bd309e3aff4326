"""M_dm: embedding-conditioned diffusion with component substitution (CS) and gradient guidance (GG).

Kept apart as diffusers does: one file per generator backend (``backends/pixel.py``,
``backends/unclip.py``), the scheduler (diffusers' DDIM), the sampling loop
(``sampling.py``) and the methods acting through its hooks (``cs.py``, ``gg.py``),
with the method names and their structural weights in ``methods.py``.
Generation takes arrays, not decoder objects.
"""
from gess.generation.cs import PRESETS as CS_PRESETS
from gess.generation.cs import ComponentSubstitution, CSOptions
from gess.generation.filters import lowpass
from gess.generation.gg import GGOptions, GradientGuidance
from gess.generation.methods import GENERATOR_METHODS, METHODS, structure_weight
from gess.generation.generate import generate_images
from gess.generation.sampling import SamplingOptions, sample

__all__ = ["sample", "generate_images", "SamplingOptions", "METHODS", "GENERATOR_METHODS", "structure_weight",
           "ComponentSubstitution", "CSOptions", "CS_PRESETS", "GradientGuidance", "GGOptions", "lowpass"]
