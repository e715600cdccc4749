"""eiesim: a cycle-level simulator of the EIE accelerator on Deep Compression layers.

EIE: Han et al., "EIE: Efficient Inference Engine on Compressed Deep Neural
Network", ISCA 2016. Deep Compression: Han, Mao, Dally, ICLR 2016.
"""

from .config import EIEConfig
from .errors import EieConfigError, EieError, EieFormatError, EieInputError

__version__ = "0.1.0"

__all__ = [
    "EIEConfig",
    "EieError",
    "EieConfigError",
    "EieFormatError",
    "EieInputError",
    "__version__",
]
