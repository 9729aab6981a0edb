"""Writes docs/api.md, the reference of dslgraph's public API, from the package itself.

    python docs/make_api.py [--output docs/api.md]

Per module (`dslgraph` and each subpackage of its `__all__`), in `__all__` order: each class and function with
its signature and the first paragraph of its docstring, each class's public methods and properties (an
override is described at the documented base that declares it, and of torch's and PyG's methods only
`forward` and `reset_parameters`), and each constant with its value and the words on it (a `#:` comment
above it or a string below it). A name that two packages export is described in the package
whose code holds it. Standard library and dslgraph only; the output depends on neither memory addresses nor
the Python version (3.10-3.13), so that tests/test_docs.py can compare it with the committed file.
"""

from __future__ import annotations

import argparse
import ast
import enum
import functools
import inspect
import re
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # this checkout's dslgraph, not an installed one
    sys.path.insert(0, str(ROOT))

from dslgraph.data.io import write_then_rename  # noqa: E402

OUTPUT = ROOT / "docs" / "api.md"
COMMAND = "python docs/make_api.py"
# a signature longer than this goes one parameter a line
WIDTH = 100
# methods a framework base declares for its subclasses to define, which users call: listed even where a torch
# or PyG base has them (other overrides, such as a dataset's `process`, are the framework's business)
CALLED_BY_USERS = ("forward", "reset_parameters")


def modules() -> list[types.ModuleType]:
    """dslgraph and the subpackages its ``__all__`` names."""
    import dslgraph

    found = [dslgraph]
    for name in dslgraph.__all__:
        value = getattr(dslgraph, name)
        if inspect.ismodule(value):
            found.append(value)
    return found


def home(module: types.ModuleType, obj: object) -> bool:
    """``obj`` is described under ``module``: its code is in that package (a re-export elsewhere points
    there)."""
    defined = getattr(obj, "__module__", None) or module.__name__
    return (
        module.__name__ == "dslgraph"
        or defined == module.__name__
        or defined.startswith(module.__name__ + ".")
    )


@functools.cache
def public_classes() -> frozenset[type]:
    """The classes the modules export (once: :func:`members` and :func:`class_line` ask for each class)."""
    return frozenset(obj for module in modules() for obj in vars(module).values() if inspect.isclass(obj))


def members(cls: type) -> list[tuple[str, object]]:
    """The public methods and properties ``cls`` defines (with those of its bases that no ``__all__`` names),
    in source order; an override of a documented base's method is described there."""
    documented = public_classes()
    own = [cls] + [base for base in cls.__mro__[1:-1] if base.__module__.startswith("dslgraph.")]
    own = [base for base in own if base is cls or base not in documented]
    found = {}
    for owner in own:
        for name, value in vars(owner).items():
            function = function_of(value)
            # a method PyG attaches when a MessagePassing class is first built (its generated `collect`)
            # is no method of the class's own code
            if (
                name.startswith("_")
                or name in found
                or getattr(function, "__module__", None) != owner.__module__
            ):
                continue
            overridden = [base for base in cls.__mro__ if base not in own and name in vars(base)]
            if any(base in documented or name not in CALLED_BY_USERS for base in overridden):
                continue
            found[name] = value
    return list(found.items())


def function_of(value: object) -> types.FunctionType | None:
    """The function behind a method, classmethod, staticmethod, property or cached property; None for data."""
    if isinstance(value, (classmethod, staticmethod)):
        value = value.__func__
    elif isinstance(value, property):
        value = value.fget
    elif type(value).__name__ == "cached_property":
        value = value.func
    return value if inspect.isfunction(value) else None


def docstring(obj: object) -> str:
    """The first paragraph of ``obj``'s own docstring (not a base's), Sphinx roles as Markdown code."""
    doc = obj.__doc__ if inspect.isclass(obj) else getattr(function_of(obj) or obj, "__doc__", None)
    if not doc or not doc.strip():
        return ""
    paragraph = inspect.cleandoc(doc).split("\n\n")[0]
    paragraph = re.sub(r":\w+:`~?(?:[^`<]*<)?([^`>]*)>?`", _role, paragraph)
    paragraph = re.sub(r"`([^`<]+?)\s*<(https?://[^>]+)>`_", r"[\1](\2)", paragraph)  # a link
    return re.sub(r"``([^`]+)``", r"`\1`", paragraph)


def _role(match: re.Match) -> str:
    target = match.group(1)
    shown = target.rsplit(".", 1)[-1] if match.group(0).split("`")[1].startswith("~") else target
    return f"`{shown}`"


class _Shown:
    """A default value written as given, whatever its repr."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def shown(value: object) -> str:
    """``value`` as a signature shows it: literals as Python writes them (strings in double quotes),
    functions, classes and modules by name, tensors and other objects by their type (never an address)."""
    if isinstance(value, str):
        text = repr(value)  # in double quotes, as ruff formats the code blocks of docs/
        return f'"{text[1:-1]}"' if text[0] == "'" and '"' not in value else text
    if value is None or isinstance(value, (bool, int, float, complex, bytes)):
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, (tuple, list, set, frozenset)):
        items = [
            shown(item)
            for item in (sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value)
        ]
        if isinstance(value, tuple):
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
        return f"[{', '.join(items)}]" if isinstance(value, list) else f"{{{', '.join(items)}}}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{shown(key)}: {shown(item)}" for key, item in value.items()) + "}"
    if inspect.ismodule(value):
        return value.__name__
    if inspect.isclass(value) or inspect.isroutine(value):
        return getattr(value, "__qualname__", value.__name__)
    # a name such as torch.float32 or a dataclass's <factory>, else the type: a tensor's repr changes with
    # torch, an object's holds its address
    text = repr(value)
    return text if re.fullmatch(r"[A-Za-z_][\w.]*|<\w+>", text) else f"<{type(value).__name__}>"


def signature(obj: object, name: str, wrap: bool = True) -> str:
    """``name(params)``, defaults as :func:`shown` writes them, ``self`` / ``cls`` left out; with ``wrap``,
    one parameter a line when long."""
    if inspect.isclass(obj):
        maker = next(cls for cls in obj.__mro__ if "__init__" in vars(cls) or "__new__" in vars(cls))
        if not maker.__module__.startswith("dslgraph."):  # torch's Module(*args, **kwargs), an exception's
            return name
    sig = inspect.signature(obj if inspect.isclass(obj) else function_of(obj))
    # self / cls, and the private arguments that only the class's own constructors pass
    parameters = list(sig.parameters.values())
    if parameters and parameters[0].name in ("self", "cls") and not inspect.isclass(obj):
        parameters = parameters[1:]
    parameters = [p for p in parameters if not p.name.startswith("_")]
    parameters = [
        p.replace(
            default=p.default if p.default is p.empty else _Shown(shown(p.default)),
            annotation=p.annotation if p.annotation is p.empty else _Shown(_annotation(p.annotation)),
        )
        for p in parameters
    ]
    # str(parameter) each (`name: annotation = default`), with the / and * markers where inspect puts them
    marked, kinds = [], [p.kind for p in parameters]
    for i, (parameter, kind) in enumerate(zip(parameters, kinds)):
        keyword_only = kind is inspect.Parameter.KEYWORD_ONLY
        if keyword_only and inspect.Parameter.VAR_POSITIONAL not in kinds[:i] and kinds[i - 1 : i] != [kind]:
            marked.append("*")
        marked.append(str(parameter))
        if kind is inspect.Parameter.POSITIONAL_ONLY and kinds[i + 1 : i + 2] != [kind]:
            marked.append("/")
    returns = "" if sig.return_annotation is sig.empty or inspect.isclass(obj) else sig.return_annotation
    tail = f" -> {_annotation(returns)}" if returns else ""
    line = f"{name}({', '.join(marked)}){tail}"
    if len(line) <= WIDTH or not wrap:
        return line
    return f"{name}(\n" + "".join(f"    {text},\n" for text in marked) + f"){tail}"


def _annotation(annotation: object) -> str:
    # dslgraph's modules use `from __future__ import annotations`: annotations are the source's text (a
    # NamedTuple's field, that text as a ForwardRef)
    annotation = getattr(annotation, "__forward_arg__", annotation)
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def constant(name: str, value: object) -> str:
    """``name = value``, a long tuple or dict one item a line."""
    line = f"{name} = {shown(value)}"
    if len(line) <= WIDTH or not isinstance(value, (tuple, dict)):
        return line
    if isinstance(value, tuple):
        return f"{name} = (\n" + "".join(f"    {shown(item)},\n" for item in value) + ")"
    return f"{name} = {{\n" + "".join(f"    {shown(k)}: {shown(v)},\n" for k, v in value.items()) + "}"


def _package(obj: object) -> str:
    """The package of ``obj``'s module (``dslgraph.sparse`` for ``dslgraph.sparse.table``)."""
    return obj.__module__.rsplit(".", 1)[0]


def constant_comment(module: types.ModuleType, name: str) -> str:
    """The words on ``name`` in ``module``'s package: the ``#:`` comment above its assignment or the string
    below it (Sphinx's two ways), as one paragraph."""
    files = [Path(module.__file__)]
    if files[0].name == "__init__.py":
        files += sorted(files[0].parent.glob("*.py"))
    for path in files:
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        body = ast.parse(source).body
        for node, after in zip(body, body[1:] + [None]):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            if not any(isinstance(target, ast.Name) and target.id == name for target in targets):
                continue
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
                return docstring(_Doc(after.value.value))
            comment, line = [], node.lineno - 2
            while line >= 0 and lines[line].lstrip().startswith("#:"):
                comment.insert(0, lines[line].lstrip()[2:].strip())
                line -= 1
            return docstring(_Doc("\n".join(comment)))
    return ""


class _Doc:
    def __init__(self, doc: str) -> None:
        self.__doc__ = doc


def class_line(cls: type) -> str:
    documented = public_classes()
    bases = [
        base.__name__
        for base in cls.__bases__
        if base is not object and (not base.__module__.startswith("dslgraph.") or base in documented)
    ]
    return f"Bases: {', '.join(f'`{base}`' for base in bases)}." if bases else ""


def undocumented() -> list[str]:
    """The names docs/api.md lists without a word on them: classes, functions, methods and properties
    without a docstring, constants without a ``#:`` comment."""
    missing = []
    for module in modules():
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not home(module, obj):
                continue
            label = f"{module.__name__}.{name}"
            if not (inspect.isclass(obj) or inspect.isroutine(obj)):
                if not constant_comment(module, name):
                    missing.append(label)
                continue
            if not docstring(obj):
                missing.append(label)
            if inspect.isclass(obj):
                missing += [f"{label}.{member}" for member, value in members(obj) if not docstring(value)]
    return missing


def render() -> str:
    out = [
        "# API reference",
        "",
        "The public classes, functions and constants of `dslgraph` and its subpackages, with the first",
        "paragraph of each docstring (`help()` gives the rest: arguments, returns, maths). Generated",
        f"from the package by `{COMMAND}`: edit the docstrings, not this file (tests/test_docs.py",
        "checks that it is current).",
        "",
    ]
    for module in modules():
        out += [f"## {module.__name__}", "", docstring(module), ""]
        exported = [getattr(module, name) for name in module.__all__]
        elsewhere = [obj for obj in exported if not inspect.ismodule(obj) and not home(module, obj)]
        if elsewhere:
            named = ", ".join(f"`{_package(obj)}.{obj.__name__}`" for obj in elsewhere)
            out += [f"Also exported here, and described there: {named}.", ""]
        for name, obj in zip(module.__all__, exported):
            if inspect.ismodule(obj) or not home(module, obj):
                continue
            out += [f"### `{name}`", ""]
            if inspect.isclass(obj):
                out += ["```python", f"class {signature(obj, name)}", "```", ""]
                bases = class_line(obj)
                out += [docstring(obj), ""] + ([bases, ""] if bases else [])
                listed = members(obj)
                for member, value in listed:
                    if isinstance(value, property) or type(value).__name__ == "cached_property":
                        head = f"`{member}` (property)"
                    else:
                        head = f"`{signature(value, member, wrap=False)}`"
                    text = docstring(value).replace("\n", "\n  ")
                    out += [f"- {head}" + (f":\n  {text}" if text else "")]
                out += [""] if listed else []
            elif inspect.isroutine(obj):
                out += ["```python", f"def {signature(obj, name)}", "```", "", docstring(obj), ""]
            else:
                out += ["```python", constant(name, obj), "```", "", constant_comment(module, name), ""]
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=OUTPUT, help="the file to write (default: docs/api.md)"
    )
    args = parser.parse_args(argv)
    text = render()
    write_then_rename(args.output, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
