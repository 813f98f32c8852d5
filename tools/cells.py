"""Convert between notebooks and a plain "cells" text file, for editing notebooks in a text editor.

    python tools/cells.py to-nb  src.cells.py nbs/00_core.ipynb   # text -> notebook (outputs dropped)
    python tools/cells.py to-txt nbs/00_core.ipynb src.cells.py   # notebook -> text

A cells file is a sequence of cells, each opened by a marker line: `# %%` for a code cell,
`# %% [markdown]` for a markdown cell (each of its lines commented out with `# `, as jupytext writes it).
The notebook is the source of truth; the text file is a scratch copy (do not commit it).
"""
import hashlib, json, sys
from pathlib import Path

CODE, MD = '# %%', '# %% [markdown]'

def to_nb(src, dst):
    cells, kind, buf = [], None, []
    def flush():
        if kind is None: return
        while buf and not buf[-1].strip(): buf.pop()
        while buf and not buf[0].strip(): buf.pop(0)
        if kind == 'markdown': buf[:] = [l[2:] if l.startswith('# ') else l[1:] if l.startswith('#') else l for l in buf]
        text = '\n'.join(buf)
        lines = [l + '\n' for l in text.split('\n')]
        if lines: lines[-1] = lines[-1][:-1]
        # a stable id (nbformat 4.5): nbdev_export writes cell ids into medbook/*.py, so they must not be random
        cid = hashlib.sha1(f'{len(cells)}:{text}'.encode()).hexdigest()[:8]
        c = {'cell_type': kind, 'id': cid, 'metadata': {}, 'source': lines}
        if kind == 'code': c.update(execution_count=None, outputs=[])
        cells.append(c)
    for line in Path(src).read_text().split('\n'):
        if line.rstrip() in (CODE, MD):
            flush(); kind, buf = ('markdown' if line.rstrip() == MD else 'code'), []
        else: buf.append(line)
    flush()
    nb = {'cells': cells, 'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}},
          'nbformat': 4, 'nbformat_minor': 5}
    Path(dst).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')

def to_txt(src, dst):
    nb = json.loads(Path(src).read_text())
    out = []
    for c in nb['cells']:
        out.append(MD if c['cell_type'] == 'markdown' else CODE)
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown': src = '\n'.join(('# ' + l) if l else '#' for l in src.split('\n'))
        out.append(src); out.append('')
    Path(dst).write_text('\n'.join(out))

if __name__ == '__main__':
    cmd, a, b = sys.argv[1:4]
    {'to-nb': to_nb, 'to-txt': to_txt}[cmd](a, b)
