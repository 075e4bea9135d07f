import numpy as np
import pytest
import scipy.io
from PIL import Image

from stsanet.data.io import DataFileError, read_fixations, read_saliency_map, write_png_atomic


def test_saliency_map_png_scaled_to_unit_range(tmp_path):
    values = np.array([[0, 128, 255]], dtype=np.uint8)
    write_png_atomic(tmp_path / "m.png", values)
    out = read_saliency_map(tmp_path / "m.png")
    assert out.dtype == np.float32 and out.shape == (1, 3)
    np.testing.assert_allclose(out, values / 255.0, rtol=0, atol=1e-7)


def test_saliency_map_jpg_and_rgb_read_as_grey(tmp_path):
    Image.fromarray(np.full((4, 5, 3), 200, np.uint8)).save(tmp_path / "m.jpg", quality=100)
    out = read_saliency_map(tmp_path / "m.jpg")
    assert out.shape == (4, 5) and abs(float(out.mean()) - 200 / 255) < 0.01


def test_fixations_png_any_nonzero(tmp_path):
    values = np.zeros((3, 4), np.uint8)
    values[1, 2] = 1
    values[2, 0] = 255
    write_png_atomic(tmp_path / "f.png", values)
    out = read_fixations(tmp_path / "f.png")
    assert out.dtype == bool
    np.testing.assert_array_equal(out, values != 0)


@pytest.mark.parametrize("key", ["I", "eyeMap", "whatever"])
def test_fixations_mat_variables(tmp_path, key):
    values = np.zeros((5, 6), np.uint8)
    values[0, 0] = values[4, 5] = 1
    scipy.io.savemat(tmp_path / "f.mat", {key: values, "scalar": np.array(3.0)})
    np.testing.assert_array_equal(read_fixations(tmp_path / "f.mat"), values != 0)


def test_fixations_mat_prefers_dhf1k_key_over_others(tmp_path):
    wanted = np.eye(3, dtype=np.uint8)
    scipy.io.savemat(tmp_path / "f.mat", {"I": wanted, "other": np.ones((3, 3))})
    np.testing.assert_array_equal(read_fixations(tmp_path / "f.mat"), wanted != 0)


def test_ambiguous_mat_names_file_and_variables(tmp_path):
    scipy.io.savemat(tmp_path / "f.mat", {"a": np.ones((3, 3)), "b": np.ones((3, 3))})
    with pytest.raises(DataFileError, match=r"f\.mat.*\['a', 'b'\]"):
        read_fixations(tmp_path / "f.mat")


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(DataFileError, match=r"nope\.png: file not found"):
        read_saliency_map(tmp_path / "nope.png")
    with pytest.raises(DataFileError, match=r"nope\.mat: file not found"):
        read_fixations(tmp_path / "nope.mat")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    with pytest.raises(DataFileError, match=r"bad\.png: cannot read image"):
        read_saliency_map(tmp_path / "bad.png")
    (tmp_path / "bad.mat").write_bytes(b"garbage")
    with pytest.raises(DataFileError, match=r"bad\.mat"):
        read_fixations(tmp_path / "bad.mat")


def test_write_png_atomic_leaves_no_temporary(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    write_png_atomic(tmp_path / "sub" / "x.png", image)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["x.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "sub" / "x.png")), image)
    with pytest.raises(TypeError, match="uint8"):
        write_png_atomic(tmp_path / "y.png", image.astype(np.float32))
