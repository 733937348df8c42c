"""tf.data input pipelines: determinism by (seed, epoch), augmentation and
normalisation against numpy references, seeded validation splits, prepared
tensorflow-datasets data (mock data, a tiny ImageNet prepared from fake
archives, empty data_dirs: no network, no downloads) and image folders."""

import importlib.resources
import importlib.util
import io
import os
import sys
import tarfile

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from freetickets_tf import pipelines

def batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)


def labelled_images(n=50, shape=(6, 6, 3)):
    """uint8 images whose label is their index, so batches tell the order."""
    x = np.random.default_rng(0).integers(0, 256, (n, *shape), dtype=np.uint8)
    return x, np.arange(n)


# --- TrainingSet: determinism ---------------------------------------------------

def test_epoch_depends_only_on_seed_and_epoch():
    x, y = labelled_images()
    train = pipelines.from_arrays(x, y, batch_size=16, seed=3, augment="crop_flip")
    assert (train.examples, train.batch_size, train.steps_per_epoch) == (50, 16, 4)
    first = batches(train.epoch(2))
    assert [len(b[1]) for b in first] == [16, 16, 16, 2]
    assert_same_batches(first, batches(train.epoch(2)))
    # A new object (a resumed run) draws the same batches: nothing is stateful.
    again = pipelines.from_arrays(x, y, batch_size=16, seed=3, augment="crop_flip")
    assert_same_batches(first, batches(again.epoch(2)))
    order = np.concatenate([b[1] for b in first])
    assert sorted(order) == list(range(50))  # a permutation: each example once
    other_epoch = np.concatenate([b[1] for b in batches(train.epoch(3))])
    assert sorted(other_epoch) == list(range(50)) and (other_epoch != order).any()
    reseeded = pipelines.from_arrays(x, y, batch_size=16, seed=4, augment="crop_flip")
    assert (np.concatenate([b[1] for b in batches(reseeded.epoch(2))]) != order).any()
    assert first[0][0].dtype == np.float32 and first[0][1].dtype == np.int32


def test_with_seed_is_the_same_set_in_another_order():
    x, y = labelled_images()
    train = pipelines.from_arrays(x, y, batch_size=16, seed=3, augment="crop_flip")
    member = train.with_seed(4)
    assert (train.seed, member.seed) == (3, 4)
    fresh = pipelines.from_arrays(x, y, batch_size=16, seed=4, augment="crop_flip")
    assert_same_batches(batches(member.epoch(1)), batches(fresh.epoch(1)))
    with pytest.raises(ValueError, match="seed"):
        train.with_seed(-1)


def test_training_batch_is_the_batch_of_that_step():
    x, y = labelled_images()
    train = pipelines.from_arrays(x, y, batch_size=16, seed=3, augment="crop_flip")
    stream = batches(train.epochs(0, 2))
    for step in (0, 3, 4, 7):  # first, last of epoch 0; first, last of epoch 1
        x_step, y_step = train.training_batch(step)
        np.testing.assert_array_equal(y_step.numpy(), stream[step][1])
        np.testing.assert_array_equal(x_step.numpy(), stream[step][0])


def test_epochs_is_the_concatenation_of_epochs():
    x, y = labelled_images()
    train = pipelines.from_arrays(x, y, batch_size=16, seed=1, augment="reflect_crop_flip")
    joined = batches(train.epochs(2, 4))
    assert len(joined) == 2 * train.steps_per_epoch
    assert_same_batches(joined, batches(train.epoch(2)) + batches(train.epoch(3)))
    # Augmentation differs between epochs too, not only the order.
    e2, e3 = (np.concatenate([b[0] for b in batches(train.epoch(e))]) for e in (2, 3))
    y2, y3 = (np.concatenate([b[1] for b in batches(train.epoch(e))]) for e in (2, 3))
    assert not np.array_equal(e2[np.argsort(y2)], e3[np.argsort(y3)])
    with pytest.raises(ValueError, match="last_epoch"):
        train.epochs(3, 3)
    with pytest.raises(ValueError, match="epoch"):
        train.epoch(-1)


def test_fit_resumes_on_the_same_batches():
    x, y = labelled_images(24, (4, 4, 1))
    train = pipelines.from_arrays(x, y % 3, batch_size=8, seed=0, augment="crop", padding=1)
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(train.epochs(1, 3), epochs=3, initial_epoch=1,
                        steps_per_epoch=train.steps_per_epoch, shuffle=False,
                        verbose=0)
    assert len(history.history["loss"]) == 2


def test_growth_batches_are_seeded_full_and_resumable():
    x, y = labelled_images()
    train = pipelines.from_arrays(x, y, batch_size=16, seed=3, augment="crop_flip")
    stream = iter(train.growth_batches(seed=7))
    drawn = [next(stream) for _ in range(8)]  # 3 full batches an epoch, endless
    assert all(len(b[1]) == 16 for b in drawn)
    resumed = iter(train.growth_batches(seed=7, start=5))
    for expected in drawn[5:]:
        x_r, y_r = next(resumed)
        np.testing.assert_array_equal(y_r, expected[1])
        np.testing.assert_array_equal(x_r, expected[0])
    other = next(iter(train.growth_batches(seed=8)))[1]
    training = next(iter(train.epoch(0)))[1]
    assert (other.numpy() != drawn[0][1].numpy()).any()
    assert (training.numpy() != drawn[0][1].numpy()).any()


# --- augmentation and normalisation against numpy ---------------------------------

def candidates(image, padding, mode, flip):
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)), mode=mode)
    h, w = image.shape[:2]
    windows = [padded[dy:dy + h, dx:dx + w]
               for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)]
    if flip:
        windows += [window[:, ::-1] for window in windows]
    return {window.tobytes(): window for window in windows}


@pytest.mark.parametrize("augment, mode, padding", [
    ("reflect_crop_flip", "reflect", 2),
    ("crop_flip", "constant", 2),
    ("crop", "constant", 1),
    ("reflect_crop", "reflect", 3),
    ("flip", None, 0),
])
def test_augmentation_matches_numpy(augment, mode, padding):
    # One hand-made image with distinct pixel values (non-square, 2 channels),
    # repeated: every output must be one of numpy's windows of the padded
    # image (flipped or not), and every window must turn up.
    image = (np.arange(5 * 6 * 2).reshape(5, 6, 2) + 1).astype("float32")
    n = 600
    train = pipelines.from_arrays(np.repeat(image[None], n, 0), np.zeros(n, int),
                                  batch_size=128, seed=0, augment=augment,
                                  padding=padding)
    out = np.concatenate([b[0] for b in batches(train.epoch(0))])
    flip = "flip" in augment
    expected = (candidates(image, padding, mode, flip) if mode
                else {image.tobytes(): image, image[:, ::-1].tobytes(): image[:, ::-1]})
    seen = {o.tobytes() for o in out}
    assert seen <= set(expected)
    assert seen == set(expected)
    if mode == "constant":
        assert (out == 0).any()


def test_cifar_padding_defaults_to_4_and_reflection_is_valid():
    x = np.zeros((2, 32, 32, 3), np.uint8)
    assert pipelines.from_arrays(x, [0, 1], 2, augment="crop_flip").padding == 4
    with pytest.raises(ValueError, match="padding"):
        pipelines.from_arrays(x[:, :3, :3], [0, 1], 2, augment="reflect_crop", padding=3)


def test_normalisation_matches_numpy():
    x, y = labelled_images(20)
    mean, std = pipelines.NORMALIZATION["cifar100"]
    train = pipelines.from_arrays(x, y, batch_size=8, mean=mean, std=std)
    for images, labels in batches(train.epoch(0)):
        expected = (x[labels] / 255.0 - np.array(mean)) / np.array(std)
        np.testing.assert_allclose(images, expected, rtol=1e-5, atol=1e-5)
    plain = pipelines.from_arrays(x, y, batch_size=8)  # uint8: scaled only
    images, labels = batches(plain.epoch(0))[0]
    np.testing.assert_allclose(images, x[labels] / 255.0, rtol=1e-6)
    floats = pipelines.from_arrays(x.astype("float64"), y, batch_size=8)  # as they are
    images, labels = batches(floats.epoch(0))[0]
    np.testing.assert_array_equal(images, x[labels].astype("float32"))
    any_shape = pipelines.from_arrays(np.ones((5, 7), "float32"), np.arange(5), 2)
    assert batches(any_shape.epoch(0))[0][0].shape == (2, 7)


def test_original_normalisation_constants():
    # VITA-Group/FreeTickets, sparselearning/utils.py.
    assert pipelines.NORMALIZATION["cifar10"] == (
        (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    assert pipelines.NORMALIZATION["cifar100"][0][0] == 0.5070751592371323
    assert pipelines.NORMALIZATION["imagenet2012"] == (
        (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.mark.parametrize("kwargs, match", [
    (dict(augment="rotate"), "Allowed values: 'crop_flip'"),
    (dict(augment="crop", padding=-1), "padding"),
    (dict(mean=(0.5,) * 3), "both `mean` and `std`"),
    (dict(mean=(0.5,) * 2, std=(1,) * 2), "3 channels"),
    (dict(mean=(0.5,) * 3, std=(0, 1, 1)), "std"),
    (dict(batch_size=0), "batch_size"),
    (dict(seed=-1), "seed"),
])
def test_from_arrays_errors(kwargs, match):
    x, y = labelled_images(4)
    kwargs = {"batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        pipelines.from_arrays(x, y, **kwargs)


def test_from_arrays_data_errors():
    x, y = labelled_images(4)
    with pytest.raises(ValueError, match="labels of shape"):
        pipelines.from_arrays(x, y[:3], 2)
    with pytest.raises(ValueError, match="integer labels"):
        pipelines.from_arrays(x, y.astype("float32"), 2)
    with pytest.raises(ValueError, match=r"\(n, h, w, c\)"):
        pipelines.from_arrays(x[..., 0], y, 2, augment="flip")


# --- tensorflow-datasets (mock data: no network) -----------------------------------

@pytest.mark.parametrize("name, num_classes", [
    ("cifar10", 10), ("cifar100", 100), ("svhn_cropped", 10)])
def test_load_mock_data(tmp_path, no_network, name, num_classes):
    with tfds.testing.mock_data(num_examples=50):
        data = pipelines.load(name, data_dir=tmp_path, batch_size=16, seed=1)
        raw_test = next(iter(tfds.as_numpy(tfds.builder(name, data_dir=str(tmp_path))
                                           .as_dataset(split="test", as_supervised=True)
                                           .batch(50))))
    assert data.name == name and data.num_classes == num_classes
    assert data.input_shape == (32, 32, 3)
    assert data.train.examples == 45 and data.train.steps_per_epoch == 3
    x, y = batches(data.train.epoch(0))[0]
    assert x.shape == (16, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int32
    assert ((0 <= y) & (y < num_classes)).all()
    assert sum(len(b[1]) for b in batches(data.validation)) == 5
    test = batches(data.test)
    assert [len(b[1]) for b in test] == [16, 16, 16, 2]
    # The test split, in order, normalised with the dataset's constants.
    mean, std = pipelines.NORMALIZATION[name]
    np.testing.assert_allclose(np.concatenate([b[0] for b in test]),
                               (raw_test[0] / 255.0 - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in test]), raw_test[1])


def raw_rows(ds):
    """uint8 rows of the images of a pipeline built with normalization (0, 1)."""
    x = np.concatenate([b[0] for b in batches(ds)])
    return {r.tobytes() for r in np.round(x * 255).astype("uint8").reshape(len(x), -1)}


def test_load_validation_split_is_seeded_disjoint_and_ten_percent(tmp_path, no_network):
    identity = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))

    def split(split_seed=0, seed=0):
        data = pipelines.load("cifar10", data_dir=tmp_path, batch_size=64, seed=seed,
                              augment=False, normalization=identity,
                              split_seed=split_seed)
        return raw_rows(data.train.epoch(0)), raw_rows(data.validation)

    with tfds.testing.mock_data(num_examples=100):
        train, val = split()
        raw = next(iter(tfds.as_numpy(tfds.builder("cifar10", data_dir=str(tmp_path))
                                      .as_dataset(split="train", as_supervised=True)
                                      .batch(100))))[0]
        assert split(seed=5) == (train, val)  # the training seed keeps the split
        train_2, val_2 = split(split_seed=2)
    assert len(val) == 10 and len(train) == 90 and not train & val
    assert train | val == {r.tobytes() for r in raw.reshape(100, -1)}
    assert val_2 != val and len(val_2) == 10


def test_load_without_validation_and_with_max_examples(tmp_path, no_network):
    with tfds.testing.mock_data(num_examples=30):
        data = pipelines.load("cifar100", data_dir=tmp_path, batch_size=8,
                              validation_fraction=0, max_examples=20, eval_batch_size=5)
    assert data.validation is None and data.train.examples == 20
    assert [len(b[1]) for b in batches(data.test)] == [5] * 4


def test_load_cifar10_corrupted_is_test_only(tmp_path, no_network):
    with tfds.testing.mock_data(num_examples=12):
        data = pipelines.load("cifar10_corrupted", data_dir=tmp_path, batch_size=5,
                              corruption="glass_blur", severity=2)
    assert data.name == "cifar10_corrupted/frosted_glass_blur_2"
    assert data.train is None and data.validation is None
    assert [len(b[1]) for b in batches(data.test)] == [5, 5, 2]
    with pytest.raises(ValueError, match="needs `corruption`"):
        pipelines.load("cifar10_corrupted", data_dir=tmp_path)
    with pytest.raises(ValueError, match="severity"):
        pipelines.load("cifar10_corrupted", data_dir=tmp_path, corruption="fog", severity=6)
    with pytest.raises(ValueError, match="not 'cifar10'"):
        pipelines.load("cifar10", data_dir=tmp_path, corruption="fog", severity=1)


def test_ood_normalisation_by_name(tmp_path, no_network):
    with tfds.testing.mock_data(num_examples=4):
        own = pipelines.load("svhn_cropped", data_dir=tmp_path, batch_size=4)
        as_cifar = pipelines.load("svhn_cropped", data_dir=tmp_path, batch_size=4,
                                  normalization="cifar10")
    (x_own, _), = batches(own.test)
    (x_cifar, _), = batches(as_cifar.test)
    raw = x_own * np.array(pipelines.NORMALIZATION["svhn_cropped"][1]) + np.array(
        pipelines.NORMALIZATION["svhn_cropped"][0])
    mean, std = pipelines.NORMALIZATION["cifar10"]
    np.testing.assert_allclose(x_cifar, (raw - mean) / std, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="normalization"):
        pipelines.load("svhn_cropped", data_dir=tmp_path, normalization="mnist")


def test_missing_dataset_says_how_to_prepare_it(tmp_path, no_network):
    with pytest.raises(FileNotFoundError) as info:
        pipelines.load("cifar10", data_dir=str(tmp_path))
    message = str(info.value)
    assert "tfds build cifar10 --data_dir DIR" in message and str(tmp_path) in message
    assert "data_dir=DIR" in message and "--data_dir DIR" in message
    with pytest.raises(FileNotFoundError) as info:
        pipelines.load("imagenet2012", data_dir=str(tmp_path))
    message = str(info.value)
    assert "tfds build imagenet2012 --manual_dir MANUAL --data_dir DIR" in message
    assert "prepare_imagenet" in message and "data_dir=DIR" in message
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # nothing downloaded


def test_unknown_names_list_the_datasets():
    with pytest.raises(ValueError) as info:
        pipelines.load("mnist")
    for name in pipelines.DATASETS:
        assert repr(name) in str(info.value)
    assert set(pipelines.DATASETS) == {
        "cifar10", "cifar100", "svhn_cropped", "cifar10_corrupted", "imagenet2012"}
    with pytest.raises(ValueError, match="validation_fraction"):
        pipelines.load("cifar10", validation_fraction=1.0)


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


def test_imagenet_prepared_from_manual_archives(tmp_path, no_network, monkeypatch):
    if importlib.util.find_spec("importlib_resources") is None:
        # tfds' preparation imports it through etils; the standard library's
        # `importlib.resources` offers what it uses.
        monkeypatch.setitem(sys.modules, "importlib_resources", importlib.resources)
    manual, data_dir = tmp_path / "manual", tmp_path / "tfds"
    with pytest.raises(FileNotFoundError, match="ILSVRC2012_img_train.tar"):
        pipelines.prepare_imagenet(manual, data_dir)
    fake_imagenet_archives(manual)
    prepared = pipelines.prepare_imagenet(manual, data_dir)
    assert os.path.isdir(prepared)
    data = pipelines.load("imagenet2012", data_dir=data_dir, batch_size=4,
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
    again = pipelines.load("imagenet2012", data_dir=data_dir, batch_size=4,
                           validation_fraction=0.25, split_seed=0, seed=9)
    assert_same_batches(batches(again.validation), batches(data.validation))
    growth = next(iter(data.train.growth_batches(seed=1)))
    assert growth[0].shape == (4, 224, 224, 3)


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


def test_image_folder(tmp_path):
    write_folder(tmp_path / "train", ["dog", "cat"], per_class=10)
    write_folder(tmp_path / "test", ["dog", "cat"], per_class=3, seed=1)
    data = pipelines.image_folder(tmp_path / "train", 8, batch_size=6, seed=2,
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
    plain = pipelines.image_folder(tmp_path / "train", 8, batch_size=18, augment=False)
    x_all = np.concatenate([b[0] for b in batches(plain.train.epoch(0))])
    np.testing.assert_allclose(x_all.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(x_all.std(axis=(0, 1, 2)), 1, atol=1e-3)
    # Streaming the files gives the very batches of the in-memory cache.
    streamed = pipelines.image_folder(tmp_path / "train", 8, batch_size=6, seed=2,
                                      cache=False)
    assert_same_batches(batches(streamed.train.epoch(1)), batches(data.train.epoch(1)))
    assert_same_batches(batches(streamed.validation), batches(data.validation))


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        pipelines.image_folder(tmp_path / "missing", 8)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(ValueError, match="no class sub-folders"):
        pipelines.image_folder(tmp_path / "flat", 8)
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        pipelines.image_folder(tmp_path / "empty", 8)
    write_folder(tmp_path / "train", ["a", "b"], per_class=2)
    write_folder(tmp_path / "test", ["a", "c"], per_class=1)
    with pytest.raises(ValueError, match="differ from the training classes"):
        pipelines.image_folder(tmp_path / "train", 8, test_path=tmp_path / "test")
    with pytest.raises(ValueError, match="image_size"):
        pipelines.image_folder(tmp_path / "train", (8, 0))
