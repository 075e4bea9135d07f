"""stsanet-make-synthetic: write the synthetic dataset (DHF1K layout) under a root.

    stsanet-make-synthetic root=/tmp/synthetic size=ci seed=0

Rerunning the same command keeps a finished dataset and completes an interrupted one.
"""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from stsanet.cli.boundary import hydra_command

NAME = "stsanet-make-synthetic"


@hydra_command(NAME, config_name="make_synthetic")
def main(cfg: DictConfig) -> int:
    from stsanet.data.synthetic import SIZES, generate
    from stsanet.runs.schema import MakeSyntheticConfig, check

    check(cfg, MakeSyntheticConfig)
    root = generate(cfg.root, cfg.size, int(cfg.seed), overwrite=bool(cfg.overwrite))
    spec = SIZES[cfg.size]
    print(f"synthetic dataset ({cfg.size}, seed {cfg.seed}) at {root}: {spec.videos} videos "
          f"({spec.train_videos} train) x {spec.frames} frames of {spec.width}x{spec.height}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
