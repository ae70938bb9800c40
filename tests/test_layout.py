"""The shape of the repository: one-way imports, small modules, and nothing that names a
path outside the repository (a clone must run alone)."""

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("agents", "chat", "koboldchat")
MAX_LINES = 300


def modules(package: str) -> list[Path]:
    return [
        path
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", modules("agents"), ids=lambda p: p.name)
def test_agents_never_imports_chat(path):
    """The LLM layer knows nothing of users, the database or the chat app."""
    assert not imported(path) & {"chat", "koboldchat"}


@pytest.mark.parametrize(
    "path", [p for pkg in PRODUCT for p in modules(pkg)], ids=lambda p: str(p)
)
def test_no_product_module_is_over_300_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_chat_keeps_at_most_a_dozen_top_level_modules():
    top = [p for p in (ROOT / "chat").glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= 12, sorted(p.name for p in top)


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [
        ROOT / name
        for name in listed
        if not name.startswith("tests/captures/")
        and (ROOT / name).suffix in {".py", ".md", ".toml", ".txt", ".html", ".js", ""}
        and (ROOT / name).is_file()
    ]


def test_no_file_names_a_path_outside_the_repository():
    """Only .ci/run may look beside the repository, for the optional real KoboldCpp."""
    # The folders beside this checkout, by relative or absolute path (none in a clone).
    beside = [p.name for p in ROOT.parent.iterdir() if p != ROOT]
    forms = [re.escape(str(ROOT.parent) + "/")] + [
        re.escape(f"../{name}") for name in beside
    ]
    outside = re.compile("|".join(forms))
    offenders = [
        str(path.relative_to(ROOT))
        for path in tracked_text_files()
        if path.relative_to(ROOT).as_posix() != ".ci/run"
        and outside.search(path.read_text(errors="ignore"))
    ]
    assert offenders == []
