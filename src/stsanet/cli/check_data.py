"""stsanet-check-data: list every problem of a dataset root; exit 1 when it is unusable.

    stsanet-check-data data=dhf1k data.root=/data/DHF1K
    stsanet-check-data data=hollywood2 data.root=/data/Hollywood2 deep=true splits=[test]

``deep=true`` opens every annotation file (all-black saliency maps and empty fixation maps are
named per file). Exit status 0 (usable), 1 (unusable: the report says why), 2 (bad input: one
line naming it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from stsanet.cli.boundary import hydra_command
from stsanet.errors import ConfigError

NAME = "stsanet-check-data"


@hydra_command(NAME, config_name="check_data")
def main(cfg: DictConfig) -> int:
    from stsanet.data.check import check_index
    from stsanet.data.index import build_index
    from stsanet.runs.schema import CheckDataConfig, check

    check(cfg, CheckDataConfig)
    root = Path(cfg.data.root).expanduser()
    if cfg.data.dataset == "synthetic" and not (root / "synthetic.json").is_file():
        # the command that creates (or completes) exactly the dataset this config reads
        raise ConfigError(f"data.root={root} holds no finished synthetic dataset; create or "
                          f"complete it with: stsanet-make-synthetic root={root} "
                          f"size={cfg.data.size} seed={cfg.data.generate_seed}")
    index = build_index(cfg.data.dataset, root, **(cfg.data.get("index_options") or {}))
    splits = list(cfg.splits) if cfg.splits is not None else None
    report = check_index(index, splits, int(cfg.data.clip_len), deep=bool(cfg.deep))
    print(report.format())
    return 0 if report.usable else 1


if __name__ == "__main__":
    sys.exit(main())
