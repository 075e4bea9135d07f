"""Compiled inference (`InferenceModel(compile=True)`: inductor, frozen weights) computes the
eager model's maps on real frames, and the predictor keeps one compiled shape per video."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_helpers import bikes_clip, bikes_path, randomize, small_model, spread_decoder
from stsanet.metrics.benchmark import cc
from stsanet.models.inference import InferenceModel
from stsanet.runs.predictor import PredictOptions, SlidingWindowPredictor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    return spread_decoder(randomize(small_model(seed=1), 2))


def test_compiled_maps_equal_eager_maps_on_real_frames(model):
    x = torch.cat([bikes_clip(start=0), bikes_clip(start=40)])
    eager = InferenceModel(model)(x).double().numpy()
    compiled = InferenceModel(model, compile=True)
    assert compiled.net is not model  # a snapshot: frozen weights are constants of the graph
    out = compiled(x).double().numpy()
    difference = float(np.abs(out - eager).max())
    print(f"compiled vs eager: max |difference| {difference:.2e}")
    assert eager.std() > 1e-3
    for a, b in zip(out, eager):
        assert cc(a, b) >= 0.9999
    assert difference < 1e-2


def test_compiled_predictor_pads_the_last_batch_and_matches_eager(model, tmp_path):
    frames = [0, 1, 2, 3, 4, 5, 6]  # batches of 4 and 3: the second is padded to 4
    maps = {}
    for compile in (False, True):
        options = PredictOptions(batch_windows=4, overlay=False, save_float=True, progress=False,
                                 compile=compile)
        predictor = SlidingWindowPredictor(model, model.input_size, "cpu", options)
        out = predictor.predict_video(bikes_path(), tmp_path / str(compile), frames=frames)
        maps[compile] = np.stack([np.load(out.float_map(t)) for t in frames]).astype(np.float64)
    assert maps[True].shape == maps[False].shape and len(maps[True]) == len(frames)
    for a, b in zip(maps[True], maps[False]):
        assert cc(a, b) >= 0.9999
