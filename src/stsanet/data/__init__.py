"""Datasets: layouts -> index, frame sources, clip windows, the DataModule, the synthetic set.

``SaliencyDataModule`` and ``SyntheticDataModule`` are imported on first use so that reading
frames or maps does not pull in Lightning.
"""


def __getattr__(name: str):
    if name == "SaliencyDataModule":
        from stsanet.data.datamodule import SaliencyDataModule

        return SaliencyDataModule
    if name == "SyntheticDataModule":
        from stsanet.data.synthetic import SyntheticDataModule

        return SyntheticDataModule
    raise AttributeError(f"module 'stsanet.data' has no attribute {name!r}")
