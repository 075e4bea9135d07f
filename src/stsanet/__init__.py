"""STSANet video saliency prediction: the model, benchmark metrics and a Lightning + Hydra pipeline."""

__version__ = "0.1.0"
