"""Everything installs under the one `freetickets_tf` namespace."""

import pathlib
import subprocess
import sys
import zipfile

import freetickets_tf

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_subpackages_come_from_the_top_level_folders():
    assert freetickets_tf.callbacks.__name__ == "freetickets_tf.callbacks"
    assert freetickets_tf.models.__name__ == "freetickets_tf.models"
    assert pathlib.Path(freetickets_tf.callbacks.__file__).parent.name == "callbacks"
    assert pathlib.Path(freetickets_tf.models.__file__).parent.name == "models"


def test_wheel_installs_nothing_outside_the_namespace(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_levels = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_levels == {"freetickets_tf"}
    for module in ("callbacks/dynamic_sparsity.py", "models/wide_resnet.py", "scripts/train.py",
                   "data/training_set.py", "recipes/stages.py"):
        assert f"freetickets_tf/{module}" in names
