"""The package's shape: modules hold one idea and stay readable, and each folder's __init__ only documents it
(the import-linter contracts in pyproject.toml check the layers themselves, in `make lint`)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nnctl"


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, f"split these modules (at most 400 lines): {long}"


def test_subpackage_inits_document_their_layer_and_import_nothing():
    for init in PACKAGE.glob("*/__init__.py"):
        if init.parent.name == "cli":  # the console script's entry point, `nnctl.cli:main`
            continue
        tree = ast.parse(init.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{init}: say what this layer holds"
        assert not [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)], \
            f"{init}: importing here would load the layer's modules for anyone importing one of them"
