"""Exit 1 stays "a bug in forgectl": every error forgectl reports on purpose has a
documented code of its own (issue 15's last rule), and the codes are documented."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import forgectl
from forgectl.errors import ExitCode, ForgeError

PACKAGE = Path(forgectl.__file__).resolve().parent
README = PACKAGE.parent / "README.md"


def every_module() -> list[str]:
    return [m.name for m in pkgutil.walk_packages([str(PACKAGE)], "forgectl.")]


def error_classes() -> list[type[ForgeError]]:
    for name in every_module():
        importlib.import_module(name)
    found: list[type[ForgeError]] = []
    todo: list[type[ForgeError]] = [ForgeError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_class_but_the_base_has_a_code_other_than_1() -> None:
    classes = error_classes()
    assert len(classes) > 10, [c.__name__ for c in classes]  # the walk found them all
    wrong = [c.__qualname__ for c in classes if c is not ForgeError and c.exit_code == 1]
    assert not wrong, wrong


def test_nothing_raises_the_base_error_or_exits_1() -> None:
    """``raise ForgeError(...)`` would be exit 1; so would ``sys.exit(1)``."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                if isinstance(func, ast.Name) and func.id == "ForgeError":
                    found.append(f"{path.name}:{node.lineno} raise ForgeError")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "exit"
                and [ast.dump(a) for a in node.args] == [ast.dump(ast.Constant(1))]
            ):
                found.append(f"{path.name}:{node.lineno} exit(1)")
    assert not found, found


def test_every_code_is_in_the_readme_with_its_meaning() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Exit status", 1)[1].split("\n## ", 1)[0]
    for code in ExitCode:
        # forgectl's own codes in the table; --exit-status's in the text below it
        pattern = rf"\*\*{int(code)}\*\*" if code.exit_status_only else rf"^\| {int(code)} \|"
        assert re.search(pattern, section, re.M), (int(code), code.meaning)
