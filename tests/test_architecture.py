"""Imports point one way: every ``keras_spkid`` import goes down the layer order.

The order (lowest first) and the reasons for it are in ``ARCHITECTURE.md``. Every
module's imports are read with :mod:`ast`, function-level ones included (a lazy import
is still a dependency), so the test needs neither TensorFlow nor the data.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "keras_spkid"

LAYERS: list[tuple[str, ...]] = [
    ("errors", "atomic", "vectors"),  # plain helpers, no keras_spkid imports
    ("audio",),  # waveforms and the front end
    ("data",),  # catalogues, splits, feature caches, episodes
    ("augment", "layers", "losses"),  # feature augmentation, Keras layers, loss heads
    ("models", "baselines"),  # encoders and the classical baseline
    ("scoring",),  # metrics, calibration, AS-Norm: numbers in, numbers out
    ("search",),  # galleries and nearest-neighbour indexes over embeddings
    ("inference",),  # models to embeddings; the SpeakerEncoder front door
    ("evaluation",),  # benchmarks built on inference
    ("training", "download"),  # trainers; getting corpora onto disk
    ("cli", "app"),  # entry points
    ("__init__",),  # the package facade (lazy exports only)
]
"""Packages and top-level modules of ``keras_spkid``, lowest layer first. A module may
import its own package and any package of a lower layer, nothing else (packages of one
layer are independent of each other)."""

FACADE_NAMES = {"__version__"}
"""What any module may import from the package itself (it does not pull anything in)."""

KNOWN_CYCLES: list[set[str]] = []
"""Module cycles inside a package that are known and owned elsewhere (fix, then remove)."""


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, package: Path = PACKAGE) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every ``keras_spkid`` import in a file of ``package``."""
    module = _module_name(path, package)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.append((node.lineno, base, [a.name for a in node.names]))
    return [
        (line, name, names) for line, name, names in found if name.split(".")[0] == "keras_spkid"
    ]


def _unit(module: str) -> str:
    """The layer unit of a module: its subpackage or top-level module (``__init__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(unit: str) -> int:
    for index, units in enumerate(LAYERS):
        if unit in units:
            return index
    raise AssertionError(f"keras_spkid.{unit} is in no layer of tests/test_architecture.py")


def _graph() -> dict[str, dict[str, list[str]]]:
    """``{module: {imported module: ["file:line", ...]}}`` over the whole package."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, dict[str, list[str]]] = {m: {} for m in modules}
    for module, path in modules.items():
        where = path.relative_to(PACKAGE.parent)
        for line, target, names in _imports(path):
            # "from keras_spkid.pkg import mod" imports the module pkg.mod
            targets = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules] or [target]
            for t in targets:
                if t != module:
                    graph[module].setdefault(t, []).append(f"{where}:{line}")
    return graph


def test_every_unit_has_a_layer():
    units = {_unit(_module_name(p)) for p in PACKAGE.rglob("*.py")}
    for unit in units:
        _layer(unit)


def test_imports_go_down_the_layers():
    wrong = []
    for module, targets in _graph().items():
        for target, places in targets.items():
            src, dst = _unit(module), _unit(target)
            if src == dst:
                continue
            if dst == "__init__" and src != "__init__":
                names = set()
                for place in places:
                    path, line = place.rsplit(":", 1)
                    names |= {
                        n
                        for ln, t, ns in _imports(PACKAGE.parent / path)
                        if ln == int(line)
                        for n in ns
                    }
                if names <= FACADE_NAMES:
                    continue
            if _layer(dst) >= _layer(src):
                wrong.append(f"{places[0]}: {module} imports {target} ({src} -> {dst})")
    assert not wrong, "imports that go up or across the layer order:\n" + "\n".join(sorted(wrong))


def _cycles(graph: dict[str, dict[str, list[str]]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def test_no_import_cycles_between_modules():
    cycles = _cycles(_graph())
    new = [c for c in cycles if not any(c <= known for known in KNOWN_CYCLES)]
    assert not new, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in new)
    gone = [k for k in KNOWN_CYCLES if not any(c & k for c in cycles)]
    assert not gone, f"fixed, remove from KNOWN_CYCLES: {gone}"


def test_the_checker_sees_upward_and_function_level_imports(tmp_path):
    source = tmp_path / "keras_spkid" / "scoring" / "late.py"
    source.parent.mkdir(parents=True)
    source.write_text("def f():\n    from keras_spkid.inference.embedder import Embedder\n")
    ((line, target, names),) = _imports(source, tmp_path / "keras_spkid")
    assert (line, target, names) == (2, "keras_spkid.inference.embedder", ["Embedder"])
    assert _layer(_unit(target)) > _layer(_unit("keras_spkid.scoring.late"))
    assert _cycles({"a": {"b": []}, "b": {"c": []}, "c": {"a": []}, "d": {"a": []}}) == [
        {"a", "b", "c"}
    ]
