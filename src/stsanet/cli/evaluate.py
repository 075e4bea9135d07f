"""stsanet-eval: benchmark scores (MATLAB-faithful) of saved 8-bit PNG predictions.

    stsanet-eval pred_root=preds/ gt_root=annotation/
    stsanet-eval pred_root=preds/ data=dhf1k data.root=/data/DHF1K split=val
    stsanet-eval pred_root=preds/ gt_root=annotation/ family=exact metrics=[AUC-J (exact)]

Writes results.md / results.csv / results.json / frames.csv to ``output``. Ground truth that
cannot score a metric (an all-black map, an empty fixation map) is left out of that metric and
named in the results, as is a prediction stretched to another aspect ratio; ``strict=true``
makes them errors. Exit status 0 when every frame was scored, 1 when some frames failed (they
are listed by name in the results), 2 for bad input (one line naming it).
"""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from stsanet.cli.boundary import hydra_command

NAME = "stsanet-eval"


def _frames(count: int) -> str:
    return f"{count} frame{'' if count == 1 else 's'}"


@hydra_command(NAME, config_name="eval")
def main(cfg: DictConfig) -> int:
    from stsanet.runs.evaluate import run_eval
    from stsanet.runs.schema import EvalConfig, check

    check(cfg, EvalConfig)
    results, paths = run_eval(cfg)
    summary = results.summary()
    print(" | ".join(f"{c} {summary[c]:.4f}" for c in results.columns))
    print(f"{len(results.frames)} frames scored, {len(results.errors)} failed; results in "
          f"{paths['markdown'].parent}")
    for kind, rows in results.notes().items():
        excluded = results.excluded_from(kind)
        effect = f"left out of {', '.join(excluded)}" if excluded else "stretched by the resize"
        example = rows[0]["path"] + (f": {rows[0]['detail']}" if rows[0].get("detail") else "")
        print(f"{NAME}: {'' if excluded else 'warning: '}{_frames(len(rows))}: {kind} (e.g. "
              f"{example}): {effect}; listed in {paths['markdown']}; strict=true makes them "
              f"errors", file=sys.stderr)
    if results.errors:
        first = results.errors[0]["message"]
        if not results.frames:  # nothing usable came out: the input is wrong, not some frames
            print(f"{NAME}: no frame could be scored: {len(results.errors)} failed (e.g. {first}); "
                  f"all are listed in {paths['markdown']}", file=sys.stderr)
            return 2
        print(f"{NAME}: {_frames(len(results.errors))} could not be scored (e.g. {first}); all "
              f"are listed in {paths['markdown']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
