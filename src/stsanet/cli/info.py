"""stsanet-info: the Table I columns of a model configuration, without running it.

    stsanet-info                                   # the paper setting (conf/model/stsanet.yaml)
    stsanet-info model.norm=agnostic model.input_size=[64,96]
    stsanet-info --json

Arguments are Hydra overrides of the `model` config group. Parameters, size (fp32), conv and
attention GMAC of one clip, and the shape of every stage are computed on the meta device.
"""

from __future__ import annotations

import json
import sys

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from stsanet.cli.boundary import CommandParser, command
from stsanet.models.profile import ModelProfile, profile
from stsanet.runs.config import CONF_DIR
from stsanet.runs.schema import ModelConfig, check

NAME = "stsanet-info"


def model_options(overrides: list[str]) -> tuple[str, dict]:
    """Compose conf/model with the given overrides and check its values
    (:class:`stsanet.runs.schema.ModelConfig`); returns (_target_, constructor options)."""
    overrides = [("+" + o if o.startswith("model=") else o) for o in overrides]
    if not any(o.startswith("+model=") for o in overrides):
        overrides = ["+model=stsanet", *overrides]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(overrides=overrides)
    check(cfg.model, ModelConfig, prefix="model")
    options = OmegaConf.to_container(cfg.model, resolve=True)
    return options.pop("_target_"), options


def _build(target: str):
    from hydra.utils import get_class

    return get_class(target)


def format_report(p: ModelProfile) -> str:
    c = p.config
    h, w = c["input_size"]
    lines = [
        f"STSANet  norm={c['norm']}  unpool={c['unpool']}  input 3 x 32 x {h} x {w}",
        f"  parameters       {p.parameters:,} ({p.parameters / 1e6:.2f} M)",
        f"  model size       {p.size_mb:.1f} MB (fp32)",
        f"  state_dict       {p.state_dict_entries} entries",
        f"  conv GMAC        {p.conv_gmac:.2f}  (the paper's 'FLOPs')",
        f"  attention GMAC   {p.attention_gmac:.2f}",
        "  parameter groups:",
        *(f"    {name:<22} {n:>12,}" for name, n in p.groups.items() if n),
        "  stage shapes (B x C x T x H x W):",
        *(f"    {name:<12} {' x '.join(map(str, shape))}" for name, shape in p.shapes.items()),
    ]
    return "\n".join(lines)


@command(NAME)
def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(prog=NAME, description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model.norm=agnostic")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    target, options = model_options(args.overrides)
    p = profile(build=_build(target), **options)
    if args.json:
        print(json.dumps({**p.__dict__, "shapes": {k: list(v) for k, v in p.shapes.items()}},
                         indent=2))
    else:
        print(format_report(p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
