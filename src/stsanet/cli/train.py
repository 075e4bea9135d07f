"""stsanet-train: fit STSANet with Lightning, configured by Hydra (``conf/train.yaml``).

    stsanet-train experiment=paper_dhf1k data.root=/data/DHF1K init.backbone=S3D_kinetics400.pt
    stsanet-train experiment=demo trainer.max_epochs=1
    stsanet-train ... ckpt_path=outputs/train/runs/<run>/checkpoints/last.ckpt   # resume
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from stsanet.lit.checks import ConfigError
from stsanet.runs.config import CONF_SOURCE


@hydra.main(version_base="1.3", config_path=CONF_SOURCE, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    from stsanet.runs.train import train

    try:
        metrics = train(cfg)
    except ConfigError as error:
        print(f"stsanet-train: configuration error: {error}", file=sys.stderr)
        sys.exit(2)
    # the value a sweeper optimises (hparams_search=lr_bn_optuna: optimized_metric=val/loss)
    name = cfg.get("optimized_metric")
    if name:
        if name not in metrics:
            print(f"stsanet-train: optimized_metric={name} was not logged by this run; logged: "
                  f"{sorted(metrics)}", file=sys.stderr)
            sys.exit(2)
        return metrics[name]
    return None


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
