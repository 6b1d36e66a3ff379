"""The package layout: no module of the project imports, directly or through others, a
module that imports it back (lazy imports inside functions included: a cycle there is
still one the reader has to untangle)."""

import ast
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("tfovp", "reproduce", "mnist_tutorial")


def _modules():
    """{dotted name: path} of every module of the project's packages."""
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            out[".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")] = path
    return out


def _imports(name, path, modules):
    """The project modules that `name` imports anywhere in its file."""
    found = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in modules or base in modules:
                    found.add(target if target in modules else base)
    found.discard(name)
    return found


def import_cycles():
    """Every cycle a depth-first walk of the import graph closes, as lists of names."""
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    state, path, cycles = {}, [], []

    def visit(name):
        state[name] = "open"
        path.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)
    return cycles


def test_no_import_cycle():
    assert import_cycles() == []


def test_the_walk_finds_a_cycle(tmp_path, monkeypatch):
    """The check can fail: two modules importing each other (one lazily) are found."""
    package = tmp_path / "mnist_tutorial"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from mnist_tutorial.b import f\n")
    (package / "b.py").write_text("def f():\n    from mnist_tutorial import a\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert import_cycles() == [["mnist_tutorial.a", "mnist_tutorial.b", "mnist_tutorial.a"]]


def _loaded_after(code):
    """The top-level packages loaded by `code` in a fresh interpreter."""
    import json
    import os
    import subprocess

    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-800:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_library_loads_nothing_of_the_study_or_the_tutorial():
    """Every public submodule of tfovp, imported: no `reproduce`, no `mnist_tutorial`, and
    matplotlib only where Keras itself loads it (it does when matplotlib is installed)."""
    import tfovp

    loaded = _loaded_after("import tfovp\n" + "\n".join(f"import tfovp.{name}" for name in tfovp._SUBMODULES))
    assert not loaded & {"reproduce", "mnist_tutorial"}
    assert "matplotlib" not in loaded or "matplotlib" in _loaded_after("import keras")
