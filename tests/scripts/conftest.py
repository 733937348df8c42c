"""Running an absl script's `main` in-process, as its command line would."""

import keras
import pytest
from absl import flags


@pytest.fixture
def digits_model():
    """`digits_model(seed)`: a small classifier of the bundled 8x8 digits."""

    def build(seed):
        keras.utils.set_random_seed(seed)
        return keras.Sequential([
            keras.Input((8, 8, 1)), keras.layers.Flatten(),
            keras.layers.Dense(16, activation="relu"), keras.layers.Dense(10)])

    return build


@pytest.fixture
def run_main():
    """`run_main(module, *flags)` parses the flags as the command line would,
    then calls `module.main`; the global flags are reset afterwards."""

    def run_main(module, *args):
        flags.FLAGS.unparse_flags()
        flags.FLAGS([module.__name__, *args])
        module.main([])

    yield run_main
    flags.FLAGS.unparse_flags()


@pytest.fixture
def global_flags():
    """The entry points add required-flag validators to absl's global flags;
    keep them from reaching other tests of this process."""
    validators = {name: list(flag.validators) for name, flag in flags.FLAGS._flags().items()}
    yield
    flags.FLAGS.unparse_flags()
    for name, flag in flags.FLAGS._flags().items():
        flag.validators[:] = validators.get(name, [])
