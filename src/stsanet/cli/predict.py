"""stsanet-predict: saliency maps and an overlay video for any video, frame folder or folder of videos.

    stsanet-predict input=clip.mp4 checkpoint=outputs/train/runs/<run>/checkpoints/best.ckpt
    stsanet-predict input=videos/ checkpoint=stsanet_dhf1k.pth output=maps/ batch_windows=8

Each video's folder records what its maps were made from (source.json); a rerun continues
its own work and refuses another source's (overwrite=true replaces it). Exit status 0, or 2
when an input or setting is unusable (one line each; the other videos are still predicted).
"""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from stsanet.cli.boundary import hydra_command

NAME = "stsanet-predict"


@hydra_command(NAME, config_name="predict")
def main(cfg: DictConfig) -> int:
    from hydra.core.hydra_config import HydraConfig

    from stsanet.runs.predict import run_predict

    outcomes = run_predict(cfg, list(HydraConfig.get().overrides.task))
    failed = [o for o in outcomes if o.error]
    for outcome in failed:
        print(f"{NAME}: {outcome.error}", file=sys.stderr)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
