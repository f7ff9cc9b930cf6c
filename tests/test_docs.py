"""The README is a front page and every local link in it and in docs/ points to a file that exists."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) and ![alt](target); the target ends at the first space (an optional "title") or ')'
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
MAKE_TARGET = re.compile(r"^\s*make ([a-z][a-z-]*)", re.M)


def local_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)   # no links inside code blocks
    return [t for t in LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_local_links_point_to_existing_files(page):
    missing = [t for t in local_links(page) if not (page.parent / t.split("#")[0]).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_readme_is_a_front_page_with_a_picture():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    pictures = [t for t in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", text)]
    assert pictures and all((ROOT / p).is_file() for p in pictures)


def test_readme_make_targets_exist():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    named = set(MAKE_TARGET.findall(README.read_text(encoding="utf-8")))
    assert named and named <= targets, f"README names make targets the Makefile lacks: {sorted(named - targets)}"
