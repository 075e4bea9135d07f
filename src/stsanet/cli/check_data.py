"""stsanet-check-data: list every problem of a dataset root; exit 1 when it is unusable.

    stsanet-check-data data=dhf1k data.root=/data/DHF1K
    stsanet-check-data data=hollywood2 data.root=/data/Hollywood2 deep=true splits=[test]
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from stsanet.runs.config import CONF_SOURCE


@hydra.main(version_base="1.3", config_path=CONF_SOURCE, config_name="check_data")
def _hydra_main(cfg: DictConfig) -> None:
    from stsanet.data.check import check_index
    from stsanet.data.io import DataFileError
    from stsanet.data.index import build_index

    root = OmegaConf.select(cfg, "data.root", throw_on_missing=False)
    if root is None or str(root) in ("", "???"):
        print("stsanet-check-data: data.root is not set: pass data.root=/path/to/the/dataset",
              file=sys.stderr)
        sys.exit(2)
    if "synthetic" in str(cfg.data.get("_target_", "")) and not (
            __import__("pathlib").Path(root) / "synthetic.json").is_file():
        print(f"stsanet-check-data: {root} has no synthetic dataset; create it with "
              f"stsanet-make-synthetic root={root}", file=sys.stderr)
        sys.exit(1)
    try:
        index = build_index(cfg.data.dataset, root, **(cfg.data.get("index_options") or {}))
    except DataFileError as error:
        print(f"stsanet-check-data: {error}", file=sys.stderr)
        sys.exit(1)
    splits = list(cfg.splits) if cfg.splits is not None else None
    report = check_index(index, splits, int(cfg.data.clip_len), deep=bool(cfg.deep))
    print(report.format())
    sys.exit(0 if report.usable else 1)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
