"""`nnctl`'s top-level names are the public API: each works, in a fresh interpreter, whatever was imported
before it (a subpackage of the same name would replace a facade function as soon as anything imported it)."""

import subprocess
import sys

import nnctl

from conftest import ROOT

_SCRIPT = """
import io, nnctl
from nnctl.cli.catalog import load_all
load_all()  # every command module: the CLI imports every layer
class Quiet(nnctl.Callback):
    pass
config = nnctl.load_config("configs/iris.yaml", ["training.epochs=1", "data.cache=false"])
result = nnctl.train(config, callback=Quiet(), save=False)
assert isinstance(result, nnctl.TrainResult) and isinstance(result.model, nnctl.Model)
out = io.StringIO()
rows = nnctl.predict(result.model, io.BytesIO(b"sepal_length,sepal_width,petal_length,petal_width\\n7,3,4,1\\n"), out)
assert rows == 1 and out.getvalue().startswith("species\\n")
assert nnctl.evaluate(result.model, "datasets/iris.csv")["rows"] == 150
for name in nnctl.__all__:
    getattr(nnctl, name)
print("ok")
"""


def test_every_facade_name_resolves_to_what_it_promises():
    for name in nnctl.__all__:
        value = getattr(nnctl, name)
        assert not isinstance(value, type(nnctl)), f"nnctl.{name} is a module, not the promised API"


def test_the_facade_works_after_the_layers_are_imported():
    result = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr
