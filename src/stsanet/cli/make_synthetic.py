"""stsanet-make-synthetic: write the synthetic dataset (DHF1K layout) under a root.

    stsanet-make-synthetic root=/tmp/synthetic size=ci seed=0
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from stsanet.runs.config import CONF_SOURCE


@hydra.main(version_base="1.3", config_path=CONF_SOURCE, config_name="make_synthetic")
def _hydra_main(cfg: DictConfig) -> None:
    from stsanet.data.synthetic import SIZES, generate

    if cfg.size not in SIZES:
        print(f"stsanet-make-synthetic: size={cfg.size} is unknown; use one of "
              f"{', '.join(sorted(SIZES))}", file=sys.stderr)
        sys.exit(2)
    try:
        root = generate(cfg.root, cfg.size, int(cfg.seed), overwrite=bool(cfg.overwrite))
    except FileExistsError as error:
        print(f"stsanet-make-synthetic: {error}", file=sys.stderr)
        sys.exit(2)
    spec = SIZES[cfg.size]
    print(f"synthetic dataset ({cfg.size}, seed {cfg.seed}) at {root}: {spec.videos} videos "
          f"({spec.train_videos} train) x {spec.frames} frames of {spec.width}x{spec.height}")


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
