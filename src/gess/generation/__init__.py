"""M_dm: embedding-conditioned diffusion with component substitution (CS) and gradient guidance (GG).

Kept apart as diffusers does: models (``models.py``, ``unclip.py``), the scheduler
(diffusers' DDIM), the sampling loop (``sampling.py``) and the methods acting
through its hooks (``cs.py``, ``gg.py``). Generation takes arrays, not decoder objects.
"""
from gess.generation.cs import PRESETS as CS_PRESETS
from gess.generation.cs import ComponentSubstitution, CSOptions
from gess.generation.filters import lowpass
from gess.generation.gg import GGOptions, GradientGuidance
from gess.generation.reconstruct import METHODS, reconstruct
from gess.generation.sampling import sample

__all__ = ["sample", "reconstruct", "METHODS", "ComponentSubstitution", "CSOptions", "CS_PRESETS",
           "GradientGuidance", "GGOptions", "lowpass"]
