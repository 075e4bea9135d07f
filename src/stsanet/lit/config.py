"""Where the Hydra configuration tree lives (``stsanet/conf/``, shipped inside the package)."""

from __future__ import annotations

import os
from pathlib import Path

CONF_DIR = Path(os.environ.get("STSANET_CONF_DIR", Path(__file__).resolve().parents[1] / "conf"))
