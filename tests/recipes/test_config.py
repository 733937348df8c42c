"""`EnsembleConfig`: nested sections, the flat shorthand, validation, and
what a run records (nested, differences named down to the setting)."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from freetickets_tf import recipes
from freetickets_tf.recipes import DSTConfig
from freetickets_tf.recipes import EnsembleConfig
from freetickets_tf.recipes import SparsityConfig


def test_defaults_are_the_originals_cifar_settings():
    config = EnsembleConfig()
    # SPEC §4: density 0.2, ERK, ΔT 1000, p 0.5, magnitude death, gradient
    # growth, SGD 0.1 with momentum 0.9 and weight decay 5e-4, batch 128.
    assert (config.sparsity.density, config.sparsity.distribution) == (0.2, "erk")
    assert (config.dst.update_frequency, config.dst.death_rate) == (1000, 0.5)
    assert (config.dst.death, config.dst.growth) == ("magnitude", "gradient")
    assert (config.optimizer.learning_rate, config.optimizer.momentum,
            config.optimizer.weight_decay) == (0.1, 0.9, 5e-4)
    assert config.optimizer.weight_decay_mode == "coupled" and config.batch_size == 128
    assert (config.edst.exploration_epochs, config.edst.large_death_rate) == (150, 0.8)


def test_flat_settings_go_to_the_section_that_owns_them():
    nested = EnsembleConfig(epochs=30, sparsity=SparsityConfig(density=0.1),
                            dst=DSTConfig(update_frequency=50, growth="random"))
    flat = EnsembleConfig(epochs=30, density=0.1, update_frequency=50, growth="random")
    assert flat == nested
    assert flat.to_dict() == nested.to_dict()
    # Flat settings on top of a given section change a copy, never the caller's.
    given = DSTConfig(death_rate=0.3)
    mixed = EnsembleConfig(dst=given, update_frequency=7)
    assert (mixed.dst.death_rate, mixed.dst.update_frequency) == (0.3, 7)
    assert given.update_frequency == 1000
    assert dataclasses.replace(mixed, epochs=9).dst == mixed.dst


def test_flat_reads_and_writes_still_work_and_say_where_the_setting_is():
    config = EnsembleConfig(density=0.3)
    with pytest.warns(DeprecationWarning, match=r"config\.sparsity\.density"):
        assert config.density == 0.3
    with pytest.warns(DeprecationWarning, match=r"config\.dst\.death_rate"):
        config.death_rate = 0.25
    assert config.dst.death_rate == 0.25  # not a stray attribute the run ignores
    with pytest.raises(AttributeError, match="no setting 'densty'"):
        config.densty = 0.1
    with pytest.raises(TypeError, match="densty"):
        EnsembleConfig(densty=0.1)


def test_to_dict_is_nested_and_json_safe():
    settings = EnsembleConfig(lr_milestones=(0.4, 0.8)).to_dict()
    assert set(settings) >= {"sparsity", "dst", "edst", "pf", "optimizer", "epochs"}
    assert "verbose" not in settings
    assert settings["optimizer"]["lr_milestones"] == [0.4, 0.8]
    assert json.loads(json.dumps(settings)) == settings


@pytest.mark.parametrize("changes, message", [
    ({"density": 1.5}, "density"),
    ({"growth": "gradients"}, "growth"),
    ({"death_rate_schedule": "linear"}, "death_rate_schedule"),
    ({"momentum": 1.0}, "momentum"),
    ({"finetune_epochs": 0}, "finetune_epochs"),
    ({"large_death_rate": 1.2}, "large_death_rate"),
    ({"warmup_epochs": 5, "epochs": 5}, "warmup_epochs"),
    ({"growth_batch": "last", "growth": "random"}, "growth_batch"),
])
def test_every_section_is_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        EnsembleConfig(**changes).validate("dst")


def test_sections_must_be_their_own_type():
    with pytest.raises(ValueError, match="`dst`: expected a DSTConfig"):
        EnsembleConfig(dst=SparsityConfig())
    assert EnsembleConfig(dst={"death_rate": 0.1}).dst == DSTConfig(death_rate=0.1)


def test_edst_only_settings_are_refused_for_other_methods():
    config = EnsembleConfig(exploration_milestones=(3,))
    with pytest.raises(ValueError, match="EDST settings"):
        config.validate("dst")


def _small():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(3)])


def test_a_resumed_run_with_another_setting_names_it(tmp_path):
    x = np.random.default_rng(0).normal(size=(24, 4)).astype("float32")
    y = np.arange(24) % 3
    config = EnsembleConfig(num_members=1, epochs=1, batch_size=8, update_frequency=2,
                            verbose=0, selection="last", monitor="loss")
    recipes.train_ensemble("dst", _small, (x, y), None, config, tmp_path)
    other = dataclasses.replace(config, dst=DSTConfig(update_frequency=2, death_rate=0.3))
    with pytest.raises(ValueError, match=r"dst\.death_rate: 0\.5 there, 0\.3 now"):
        recipes.check_resumable("dst", _small, (x, y), None, other, tmp_path)
