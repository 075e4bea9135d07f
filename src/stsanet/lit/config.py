"""Where the Hydra configuration tree lives: ``stsanet/conf/``, shipped inside the package.

The entry points read it as ``pkg://stsanet.conf`` (found through the import system, so a wheel
install works from any directory); ``CONF_DIR`` is the same folder on disk, for code that lists
or reads the files. ``STSANET_CONF_DIR`` points both at another tree.
"""

from __future__ import annotations

import os
from pathlib import Path

CONF_DIR = Path(os.environ.get("STSANET_CONF_DIR", Path(__file__).resolve().parents[1] / "conf"))
CONF_SOURCE = str(CONF_DIR) if "STSANET_CONF_DIR" in os.environ else "pkg://stsanet.conf"
