import os
import stat

import pytest

from stsanet.atomic import atomic_path, write_text_atomic


def test_replaces_only_on_success_and_leaves_no_debris(tmp_path):
    target = tmp_path / "sub" / "results.json"
    write_text_atomic(target, "first")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half-written")
            raise RuntimeError("interrupted")
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.json"]


def test_finished_file_gets_the_usual_mode(tmp_path):
    target = tmp_path / "map.png"
    write_text_atomic(target, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
