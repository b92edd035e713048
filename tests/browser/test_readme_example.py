"""The dash.testing example in README.md runs as written."""

from __future__ import annotations

import re

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.browser


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    example = next(b for b in blocks if "def test_my_panel" in b)
    return example


def test_readme_dash_testing_example(dash_duo, tmp_path):
    namespace: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    namespace["test_my_panel"](dash_duo, tmp_path)
