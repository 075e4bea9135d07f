"""The Hydra configuration tree, read as ``pkg://stsanet.conf`` (a module, so Hydra finds it)."""
