"""Running an absl script's `main` in-process, as its command line would."""

import pytest
from absl import flags


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
