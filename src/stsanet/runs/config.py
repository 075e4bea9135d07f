"""Where the Hydra configuration tree lives: ``stsanet/conf/``, shipped inside the package, and
the resolvers it uses.

The entry points read it as ``pkg://stsanet.conf`` (found through the import system, so a wheel
install works from any directory); ``CONF_DIR`` is the same folder on disk, for code that lists
or reads the files. ``STSANET_CONF_DIR`` points both at another tree.
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

CONF_DIR = Path(os.environ.get("STSANET_CONF_DIR", Path(__file__).resolve().parents[1] / "conf"))
CONF_SOURCE = str(CONF_DIR) if "STSANET_CONF_DIR" in os.environ else "pkg://stsanet.conf"


def mixed_precision() -> str:
    """Lightning's precision for GPU training: bf16 where the GPU has it, else fp16 (the model's
    precision policy keeps the attention fp32, so fp16 cannot overflow there)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "16-mixed"


OmegaConf.register_new_resolver("stsanet.mixed_precision", mixed_precision, replace=True)
