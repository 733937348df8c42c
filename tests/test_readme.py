"""Every Python block of the README runs as written, on the bundled digits.

Each block runs in a fresh namespace, in a scratch directory, so a block
that uses a name it never defines fails here. A block whose first line is
`# continues the block above` runs in the namespace its predecessor left:
the README says so to its reader too.
"""

import os
import re
import textwrap

import keras
import pytest

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")
CONTINUES = "# continues the block above"
_FENCE = re.compile(r"^(\s*)```python\s*$")


def python_blocks(text):
    """`[(line_number, source), ...]` of the ```python blocks of `text`,
    indented ones (inside lists) dedented."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence:
            end = next(j for j in range(i + 1, len(lines))
                       if lines[j].strip() == "```")
            blocks.append((i + 1, textwrap.dedent("\n".join(lines[i + 1:end]))))
            i = end
        i += 1
    return blocks


def chains(blocks):
    """The blocks grouped into runs of one self-contained block and the
    blocks that continue it."""
    grouped = []
    for line, source in blocks:
        if source.lstrip().startswith(CONTINUES):
            assert grouped, f"README line {line}: continues no block"
            grouped[-1].append((line, source))
        else:
            grouped.append([(line, source)])
    return grouped


with open(README) as f:
    CHAINS = chains(python_blocks(f.read()))


def test_the_readme_has_its_python_blocks():
    with open(README) as f:
        text = f.read()
    fences = re.findall(r"^\s*```python\s*$", text, flags=re.MULTILINE)
    assert sum(len(chain) for chain in CHAINS) == len(fences) >= 6


def _exports(chain):
    return any("export" in source for _, source in chain)


@pytest.mark.parametrize("chain", CHAINS, ids=[f"line{chain[0][0]}" for chain in CHAINS])
def test_readme_block_runs_as_written(chain, tmp_path, monkeypatch):
    if _exports(chain) and keras.backend.backend() != "tensorflow":
        pytest.skip("exports a SavedModel, which needs TensorFlow (as the README says)")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    for line, source in chain:
        code = compile(source, f"README.md, block at line {line}", "exec")
        exec(code, namespace)  # noqa: S102 - the README's own code
