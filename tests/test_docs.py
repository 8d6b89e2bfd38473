"""The docs cannot rot: the CLI page is generated from the CLI, code blocks marked as tested
run, and every environment variable the code reads is documented.

A fenced block in a page under docs/ is tested when the line before its opening fence is
one of these markers:

    <!-- test -->                 run it: ```python as a script, ```console as shell
                                  commands (the lines starting with `$ `)
    <!-- test: save as NAME -->   write it to NAME, for later blocks to import or run
    <!-- test: output -->         each line of this block is a line of what the block
                                  run last printed

The blocks of one page run in order, in one empty temporary directory, with the
`brains-jobs` script on PATH, no `BRAINS_JOBS_*` variables from the calling environment,
and no entry-point plugins (`BRAINS_JOBS_PLUGINS_ALLOW` set empty), as on a fresh install.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

_MARKER = re.compile(
    r"^<!--\s*test(?::\s*(?:save as\s+(?P<name>\S+)|(?P<output>output)))?\s*-->\s*$"
)
_FENCE = re.compile(r"^```(?P<lang>\w*)\s*$")


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_page_is_generated_from_the_cli() -> None:
    expected = _load_generator().render()
    actual = (DOCS / "cli.md").read_text() if (DOCS / "cli.md").exists() else ""
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                actual.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                "docs/cli.md",
                "generated",
                n=1,
            )
        )
        pytest.fail(
            "docs/cli.md differs from the CLI's help: run `python docs/gen_cli.py`\n" + diff[:4000]
        )


def test_the_settings_table_is_generated_from_the_settings() -> None:
    page = (DOCS / "configuration.md").read_text()
    assert page == _load_generator().render_configuration(page), (
        "docs/configuration.md's settings table is out of date: run `python docs/gen_cli.py`"
    )


def test_every_environment_variable_is_documented() -> None:
    from brains_jobs.config import Settings, env_name

    used = {
        name
        for path in (ROOT / "src" / "brains_jobs").rglob("*.py")
        for name in re.findall(r"BRAINS_JOBS_[A-Z0-9_]*[A-Z0-9]", path.read_text())
    } | {env_name(field) for field in Settings.model_fields}
    documented = (DOCS / "configuration.md").read_text()
    missing = sorted(name for name in used if f"`{name}`" not in documented)
    assert not missing, f"document these in docs/configuration.md: {missing}"


def test_docs_pages_are_linked_from_the_index() -> None:
    index = (DOCS / "index.md").read_text()
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "index.md")
    assert pages
    unlinked = [p for p in pages if f"({p})" not in index]
    assert not unlinked, f"link these from docs/index.md: {unlinked}"


def _slug(heading: str) -> str:
    """The anchor of a Markdown heading, as GitHub makes it."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_pages_resolve() -> None:
    anchors = {
        page.name: {
            _slug(line.lstrip("#"))
            for line in page.read_text().splitlines()
            if line.startswith("#")
        }
        for page in DOCS.glob("*.md")
    }
    broken = []
    for page in DOCS.glob("*.md"):
        for target, anchor in re.findall(r"\]\(([\w.-]*\.md|)(?:#([\w-]+))?\)", page.read_text()):
            name = target or page.name
            if name not in anchors or (anchor and anchor not in anchors[name]):
                broken.append(f"{page.name}: ({target}#{anchor})")
    assert not broken, f"links to missing pages or headings: {broken}"


# -- tested code blocks ----------------------------------------------------------------


@dataclass
class Block:
    page: str
    line: int
    lang: str
    code: str
    save_as: str | None = None
    output: bool = False


def blocks(page: Path) -> list[Block]:
    """The marked code blocks of `page`, in order."""
    found = []
    lines = page.read_text().splitlines()
    for i, line in enumerate(lines):
        marker = _MARKER.match(line.strip())
        if not marker:
            continue
        fence = _FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        assert fence, f"{page.name}:{i + 1}: a test marker must come right before a code fence"
        end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
        code = "\n".join(lines[i + 2 : end]) + "\n"
        found.append(
            Block(page.name, i + 2, fence["lang"], code, marker["name"], bool(marker["output"]))
        )
    return found


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAINS_JOBS_")}
    env["BRAINS_JOBS_PLUGINS_ALLOW"] = ""  # no entry-point plugins: a fresh install
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(block: Block, cwd: Path) -> subprocess.CompletedProcess[str]:
    if block.lang == "python":
        command = [sys.executable, "-c", block.code]
    elif block.lang == "console":
        script = "\n".join(ln[2:] for ln in block.code.splitlines() if ln.startswith("$ "))
        command = ["bash", "-euo", "pipefail", "-c", script]
    else:
        raise AssertionError(f"{block.page}:{block.line}: cannot run a {block.lang!r} block")
    return subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=60)


PAGES = sorted(p for p in DOCS.glob("*.md") if blocks(p))


def test_getting_started_has_tested_blocks() -> None:
    tested = blocks(DOCS / "getting-started.md")
    assert any(b.save_as is None and b.lang == "python" for b in tested)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_marked_code_blocks_run(page: Path, tmp_path: Path) -> None:
    printed: list[str] | None = None
    for block in blocks(page):
        if block.save_as is not None:
            (tmp_path / block.save_as).write_text(block.code)
            continue
        if block.output:
            assert printed is not None, f"{block.page}:{block.line}: no block ran before"
            missing = [ln for ln in block.code.splitlines() if ln.strip() and ln not in printed]
            assert not missing, (
                f"{block.page}:{block.line}: not printed: {missing}\n--- printed\n"
                + "\n".join(printed)
            )
            continue
        proc = _run(block, tmp_path)
        printed = [ln.rstrip() for ln in proc.stdout.splitlines()]
        assert proc.returncode == 0, (
            f"{block.page}:{block.line}: the {block.lang} block exited with "
            f"{proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
