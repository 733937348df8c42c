"""`data.image_folder`: one sub-folder of images per class."""

import keras
import numpy as np
import pytest

import freetickets_tf as ft


# --- image folders -------------------------------------------------------------

def write_folder(root, classes, per_class=5, size=(12, 10), seed=0):
    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 100, (*size, 3)) + 40 * label
            keras.utils.save_img(str(folder / f"{i}.png"), image, scale=False)
        (folder / "notes.txt").write_text("not an image")
    return root


def test_image_folder(tmp_path, batches, assert_same_batches):
    write_folder(tmp_path / "train", ["dog", "cat"], per_class=10)
    write_folder(tmp_path / "test", ["dog", "cat"], per_class=3, seed=1)
    data = ft.data.image_folder(tmp_path / "train", 8, batch_size=6, seed=2,
                                test_path=tmp_path / "test")
    assert data.class_names == ("cat", "dog") and data.num_classes == 2
    assert data.input_shape == (8, 8, 3) and data.name == "train"
    assert data.train.examples == 18 and data.train.steps_per_epoch == 3
    assert data.train.padding == 1  # 8 // 8
    assert sum(len(b[1]) for b in batches(data.validation)) == 2
    test = batches(data.test)
    assert np.concatenate([b[1] for b in test]).tolist() == [0, 0, 0, 1, 1, 1]
    x, y = batches(data.train.epoch(0))[0]
    assert x.shape == (6, 8, 8, 3) and x.dtype == np.float32
    # Normalised with the training images' own statistics.
    plain = ft.data.image_folder(tmp_path / "train", 8, batch_size=18, augment=False)
    x_all = np.concatenate([b[0] for b in batches(plain.train.epoch(0))])
    np.testing.assert_allclose(x_all.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(x_all.std(axis=(0, 1, 2)), 1, atol=1e-3)
    # Streaming the files gives the very batches of the in-memory cache.
    streamed = ft.data.image_folder(tmp_path / "train", 8, batch_size=6, seed=2,
                                    cache=False)
    assert_same_batches(batches(streamed.train.epoch(1)), batches(data.train.epoch(1)))
    assert_same_batches(batches(streamed.validation), batches(data.validation))


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        ft.data.image_folder(tmp_path / "missing", 8)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(ValueError, match="no class sub-folders"):
        ft.data.image_folder(tmp_path / "flat", 8)
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        ft.data.image_folder(tmp_path / "empty", 8)
    write_folder(tmp_path / "train", ["a", "b"], per_class=2)
    write_folder(tmp_path / "test", ["a", "c"], per_class=1)
    with pytest.raises(ValueError, match="differ from the training classes"):
        ft.data.image_folder(tmp_path / "train", 8, test_path=tmp_path / "test")
    with pytest.raises(ValueError, match="image_size"):
        ft.data.image_folder(tmp_path / "train", (8, 0))
