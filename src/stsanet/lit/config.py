"""Where the Hydra configuration tree lives (``conf/`` at the repository root), and the
resolvers it uses."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

CONF_DIR = Path(os.environ.get("STSANET_CONF_DIR", Path(__file__).resolve().parents[3] / "conf"))


def mixed_precision() -> str:
    """Lightning's precision for GPU training: bf16 where the GPU has it, else fp16 (the model's
    precision policy keeps the attention fp32, so fp16 cannot overflow there)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "16-mixed"


OmegaConf.register_new_resolver("stsanet.mixed_precision", mixed_precision, replace=True)
