"""ImageNet prepared offline from tiny fake archives and streamed."""

import importlib.resources
import importlib.util
import io
import os
import sys
import tarfile

import keras
import numpy as np
import pytest

import freetickets_tf as ft


# --- ImageNet: prepared offline from tiny fake archives ------------------------------

def _jpeg(rng, height, width):
    buffer = io.BytesIO()
    keras.utils.array_to_img(rng.integers(0, 256, (height, width, 3))).save(
        buffer, format="JPEG")
    return buffer.getvalue()


def _add(tar, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def fake_imagenet_archives(manual_dir):
    """ILSVRC2012_img_train.tar (3 classes x 4 images, as per-class tars) and
    ILSVRC2012_img_val.tar (5 images) in the layout tfds reads."""
    rng = np.random.default_rng(0)
    os.makedirs(manual_dir, exist_ok=True)
    with tarfile.open(os.path.join(manual_dir, "ILSVRC2012_img_train.tar"), "w") as train:
        for synset in ("n01440764", "n01443537", "n01484850"):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as images:
                for i in range(4):
                    _add(images, f"{synset}_{i}.JPEG", _jpeg(rng, 40 + 7 * i, 50))
            _add(train, f"{synset}.tar", inner.getvalue())
    with tarfile.open(os.path.join(manual_dir, "ILSVRC2012_img_val.tar"), "w") as val:
        for i in range(1, 6):
            _add(val, f"ILSVRC2012_val_{i:08d}.JPEG", _jpeg(rng, 60, 45))


def test_imagenet_prepared_from_manual_archives(tmp_path, no_network, monkeypatch, batches, assert_same_batches):
    if importlib.util.find_spec("importlib_resources") is None:
        # tfds' preparation imports it through etils; the standard library's
        # `importlib.resources` offers what it uses.
        monkeypatch.setitem(sys.modules, "importlib_resources", importlib.resources)
    manual, data_dir = tmp_path / "manual", tmp_path / "tfds"
    with pytest.raises(FileNotFoundError, match="ILSVRC2012_img_train.tar"):
        ft.data.prepare_imagenet(manual, data_dir)
    fake_imagenet_archives(manual)
    prepared = ft.data.prepare_imagenet(manual, data_dir)
    assert os.path.isdir(prepared)
    data = ft.data.load("imagenet2012", data_dir=data_dir, batch_size=4,
                        validation_fraction=0.25, shuffle_buffer=8)
    assert data.num_classes == 1000 and data.input_shape == (224, 224, 3)
    assert data.train.examples == 9 and data.train.steps_per_epoch == 3
    epoch0 = batches(data.train.epoch(0))
    assert [b[0].shape for b in epoch0] == [(4, 224, 224, 3)] * 2 + [(1, 224, 224, 3)]
    assert epoch0[0][0].dtype == np.float32 and epoch0[0][1].dtype == np.int32
    assert_same_batches(epoch0, batches(data.train.epoch(0)))
    assert_same_batches(batches(data.train.epochs(0, 2)),
                        epoch0 + batches(data.train.epoch(1)))
    assert abs(np.concatenate([b[0] for b in epoch0]).mean()) < 1.5  # normalised
    assert sum(len(b[1]) for b in batches(data.validation)) == 3
    test = batches(data.test)
    assert sum(len(b[1]) for b in test) == 5 and test[0][0].shape[1:] == (224, 224, 3)
    # Evaluation crops are not random; the held-out slice depends on split_seed.
    assert_same_batches(test, batches(data.test))
    again = ft.data.load("imagenet2012", data_dir=data_dir, batch_size=4,
                         validation_fraction=0.25, split_seed=0, seed=9)
    assert_same_batches(batches(again.validation), batches(data.validation))
    growth = next(iter(data.train.growth_batches(seed=1)))
    assert growth[0].shape == (4, 224, 224, 3)
