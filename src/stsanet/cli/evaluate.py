"""stsanet-eval: benchmark scores (MATLAB-faithful) of saved 8-bit PNG predictions.

    stsanet-eval pred_root=preds/ gt_root=annotation/
    stsanet-eval pred_root=preds/ data=dhf1k data.root=/data/DHF1K split=val
    stsanet-eval pred_root=preds/ gt_root=annotation/ family=exact metrics=[AUC-J (exact)]

Writes results.md / results.csv / results.json / frames.csv to ``output``. Exit status 0 when
every frame was scored, 1 when some frames failed (they are listed by name in the results),
2 for a configuration error.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from stsanet.runs.config import CONF_SOURCE


@hydra.main(version_base="1.3", config_path=CONF_SOURCE, config_name="eval")
def _hydra_main(cfg: DictConfig) -> None:
    from stsanet.runs.evaluate import EvalConfigError, run_eval

    try:
        results, paths = run_eval(cfg)
    except EvalConfigError as error:
        print(f"stsanet-eval: configuration error: {error}", file=sys.stderr)
        sys.exit(2)
    summary = results.summary()
    print(" | ".join(f"{c} {summary[c]:.4f}" for c in results.columns))
    print(f"{len(results.frames)} frames scored, {len(results.errors)} failed; results in {paths['markdown'].parent}")
    if results.errors:
        sys.exit(1)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
