"""`TrainingSet`: batches a function of (seed, epoch) only, resumable, with
growth streams apart from the training order; `from_arrays` checks its input."""

import keras
import numpy as np
import pytest

import freetickets_tf as ft


# --- TrainingSet: determinism ---------------------------------------------------

def test_epoch_depends_only_on_seed_and_epoch(batches, assert_same_batches, labelled_images):
    x, y = labelled_images()
    train = ft.data.from_arrays(x, y, batch_size=16, seed=3, augment="crop_flip")
    assert (train.examples, train.batch_size, train.steps_per_epoch) == (50, 16, 4)
    first = batches(train.epoch(2))
    assert [len(b[1]) for b in first] == [16, 16, 16, 2]
    assert_same_batches(first, batches(train.epoch(2)))
    # A new object (a resumed run) draws the same batches: nothing is stateful.
    again = ft.data.from_arrays(x, y, batch_size=16, seed=3, augment="crop_flip")
    assert_same_batches(first, batches(again.epoch(2)))
    order = np.concatenate([b[1] for b in first])
    assert sorted(order) == list(range(50))  # a permutation: each example once
    other_epoch = np.concatenate([b[1] for b in batches(train.epoch(3))])
    assert sorted(other_epoch) == list(range(50)) and (other_epoch != order).any()
    reseeded = ft.data.from_arrays(x, y, batch_size=16, seed=4, augment="crop_flip")
    assert (np.concatenate([b[1] for b in batches(reseeded.epoch(2))]) != order).any()
    assert first[0][0].dtype == np.float32 and first[0][1].dtype == np.int32


def test_with_seed_is_the_same_set_in_another_order(batches, assert_same_batches, labelled_images):
    x, y = labelled_images()
    train = ft.data.from_arrays(x, y, batch_size=16, seed=3, augment="crop_flip")
    member = train.with_seed(4)
    assert (train.seed, member.seed) == (3, 4)
    fresh = ft.data.from_arrays(x, y, batch_size=16, seed=4, augment="crop_flip")
    assert_same_batches(batches(member.epoch(1)), batches(fresh.epoch(1)))
    with pytest.raises(ValueError, match="seed"):
        train.with_seed(-1)


def test_training_batch_is_the_batch_of_that_step(batches, labelled_images):
    x, y = labelled_images()
    train = ft.data.from_arrays(x, y, batch_size=16, seed=3, augment="crop_flip")
    stream = batches(train.epochs(0, 2))
    for step in (0, 3, 4, 7):  # first, last of epoch 0; first, last of epoch 1
        x_step, y_step = train.training_batch(step)
        np.testing.assert_array_equal(y_step.numpy(), stream[step][1])
        np.testing.assert_array_equal(x_step.numpy(), stream[step][0])


def test_epochs_is_the_concatenation_of_epochs(batches, assert_same_batches, labelled_images):
    x, y = labelled_images()
    train = ft.data.from_arrays(x, y, batch_size=16, seed=1, augment="reflect_crop_flip")
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


def test_fit_resumes_on_the_same_batches(labelled_images):
    x, y = labelled_images(24, (4, 4, 1))
    train = ft.data.from_arrays(x, y % 3, batch_size=8, seed=0, augment="crop", padding=1)
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(train.epochs(1, 3), epochs=3, initial_epoch=1,
                        steps_per_epoch=train.steps_per_epoch, shuffle=False,
                        verbose=0)
    assert len(history.history["loss"]) == 2


def test_growth_batches_are_seeded_full_and_resumable(labelled_images):
    x, y = labelled_images()
    train = ft.data.from_arrays(x, y, batch_size=16, seed=3, augment="crop_flip")
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
