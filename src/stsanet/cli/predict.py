"""stsanet-predict: saliency maps and an overlay video for any video, frame folder or folder of videos.

    stsanet-predict input=clip.mp4 checkpoint=outputs/train/runs/<run>/checkpoints/best.ckpt
    stsanet-predict input=videos/ checkpoint=stsanet_dhf1k.pth output=maps/ batch_windows=8
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from stsanet.lit.checks import ConfigError
from stsanet.runs.config import CONF_SOURCE


@hydra.main(version_base="1.3", config_path=CONF_SOURCE, config_name="predict")
def _hydra_main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from stsanet.runs.predict import run_predict

    try:
        outcomes = run_predict(cfg, list(HydraConfig.get().overrides.task))
    except ConfigError as error:
        print(f"stsanet-predict: configuration error: {error}", file=sys.stderr)
        sys.exit(2)
    if any(o.error for o in outcomes):
        sys.exit(1)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
