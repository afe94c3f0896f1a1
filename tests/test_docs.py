"""Every python code block of the README and docs/*.md runs as written."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / 'README.md'] + sorted((ROOT / 'docs').glob('*.md'))


@pytest.mark.parametrize('page', PAGES, ids=lambda p: p.name)
def test_code_blocks_run(page):
    blocks = re.findall(r'```python\n(.*?)```', page.read_text(), re.S)
    namespace = {}
    for block in blocks:  # blocks of a page share one namespace
        exec(compile(block, str(page), 'exec'), namespace)
