"""stsanet-train: fit STSANet with Lightning, configured by Hydra (``conf/train.yaml``).

    stsanet-train experiment=paper_dhf1k data.root=/data/DHF1K init.backbone=S3D_kinetics400.pt
    stsanet-train experiment=demo trainer.max_epochs=1
    stsanet-train ... ckpt_path=outputs/train/runs/<run>/checkpoints/last.ckpt   # resume
"""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from stsanet.cli.boundary import hydra_command
from stsanet.errors import ConfigError

NAME = "stsanet-train"
RESUME = "resume with ckpt_path=<the run's folder>/checkpoints/last.ckpt (the last finished epoch)"


@hydra_command(NAME, config_name="train", hint=RESUME)
def main(cfg: DictConfig) -> float | None:
    from stsanet.runs.train import train

    metrics = train(cfg)
    # the value a sweeper optimises (hparams_search=lr_bn_optuna: optimized_metric=val/loss)
    name = cfg.get("optimized_metric")
    if name:
        if name not in metrics:
            raise ConfigError(f"optimized_metric={name} was not logged by this run; logged: "
                              f"{sorted(metrics)}")
        return metrics[name]
    return None


if __name__ == "__main__":
    sys.exit(main())
