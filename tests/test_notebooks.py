"""House rules every notebook keeps, checked statically (no notebook is run here).

- A non-exported code cell does not mix imports with other code: nbdev's documentation processor executes every
  cell that contains an import (nbdev FAQ), so such a cell would run -- out of context, and maybe slowly -- when the
  docs are built. Put its imports in a cell of their own.
- The notebook opens with `#| default_exp` (or is index.ipynb), and a lower-numbered notebook never imports the
  module of a higher-numbered one.
"""
import ast, json, re
from pathlib import Path
import pytest

NBS = sorted(p for p in (Path(__file__).resolve().parents[1]/'nbs').glob('*.ipynb'))

def _cells(nb): return json.loads(nb.read_text())['cells']

def _mixed(src):
    lines = src.split('\n')
    d = ' '.join(l for l in lines if l.strip().startswith('#|'))
    if re.search(r'\bexport[si]?\b|exec_doc|eval:\s*false', d): return False
    try: t = ast.parse('\n'.join('' if l.strip().startswith(('%', '!')) else l for l in lines))
    except SyntaxError: return False
    nodes = list(ast.walk(t))
    return any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in nodes) and any(isinstance(n, (ast.Expr, ast.Assign)) for n in nodes)

@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_no_cell_mixes_imports_and_code(nb):
    bad = [i for i, c in enumerate(_cells(nb)) if c['cell_type'] == 'code' and _mixed(''.join(c['source']))]
    assert not bad, f'{nb.name}: cells {bad} mix imports with other code; move the imports to a cell of their own'

def _module(nb):
    for c in _cells(nb):
        if m := re.search(r'^#\|\s*default_exp\s+(\S+)', ''.join(c['source']), re.M): return 'medbook.' + m.group(1)

def _num(nb): return int(m.group(1)) if (m := re.match(r'^(\d+)', nb.name)) else None

@pytest.mark.parametrize('nb', [p for p in NBS if _num(p) is not None], ids=lambda p: p.name)
def test_imports_form_a_ladder(nb):
    assert _module(nb), f'{nb.name} has no #| default_exp'
    higher = {_module(o): o.name for o in NBS if _num(o) is not None and _num(o) > _num(nb)}
    text = '\n'.join(''.join(c['source']) for c in _cells(nb) if c['cell_type'] == 'code')
    used = set(re.findall(r'(?:from|import)\s+(medbook(?:\.\w+)+)', text))
    wrong = {u: higher[u] for u in used if u in higher}
    assert not wrong, f'{nb.name} imports higher-numbered notebooks: {wrong}'
