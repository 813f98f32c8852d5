"""medbook's documentation without Quarto (which cannot be installed offline here).

    python tools/docs.py readme   # README.md from nbs/index.ipynb
    python tools/docs.py html     # _docs/: nbdev's own notebook processing (show_doc, hidden cells, exports),
                                  # then nbconvert HTML pages with one sidebar built from the notebook list
    python tools/docs.py check    # every notebook has a page and every relative link resolves (exit 1 if not)

Where Quarto exists, `nbdev_docs` builds the full site from the same notebooks and `_quarto.yml`.
"""
import html, json, re, shutil, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS, OUT = ROOT/'nbs', ROOT/'_docs'
_DIRECTIVE = re.compile(r'^\s*#\s*\|')

def page_name(nb: Path) -> str:
    "Quarto's page name: the notebook's name without its numeric prefix (00_core.ipynb -> core.html)."
    return re.sub(r'^\d+[a-z]?_', '', nb.stem) + '.html'

def notebooks():
    return sorted(p for p in NBS.glob('*.ipynb') if not p.name.startswith(('_', '.')))

def _directives(src):
    return [l for l in src.splitlines() if _DIRECTIVE.match(l)]

def _hidden(cell):
    return any('hide' in d for d in _directives(''.join(cell['source'])))

# -- README -------------------------------------------------------------------------------------------------
def readme():
    "Render nbs/index.ipynb as GitHub markdown into README.md (hidden cells dropped, directives stripped)."
    nb = json.loads((NBS/'index.ipynb').read_text())
    parts = ['<!-- Generated from nbs/index.ipynb by `python tools/docs.py readme`: edit the notebook, not this file. -->', '']
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown': parts += [src.strip(), '']; continue
        if c['cell_type'] != 'code' or _hidden(c): continue
        code = '\n'.join(l for l in src.splitlines() if not _DIRECTIVE.match(l)).strip()
        if code: parts += ['```python', code, '```', '']
        for o in c.get('outputs', []):
            text = ''.join(o.get('text', '') or o.get('data', {}).get('text/plain', ''))
            if text.strip(): parts += ['```', text.rstrip(), '```', '']
    (ROOT/'README.md').write_text('\n'.join(parts).rstrip() + '\n')

# -- HTML site ----------------------------------------------------------------------------------------------
def _title(nb_json, fallback):
    for c in nb_json['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'raw' and src.startswith('---'):
            m = re.search(r'^title:\s*(.+)$', src, re.M)
            if m: return m.group(1).strip().strip('"\'')
        if c['cell_type'] == 'markdown' and (m := re.match(r'#\s+(.+)', src.strip())): return m.group(1).strip()
    return fallback

def _frontmatter_to_markdown(nb_json):
    "nbdev turns '# Title / > summary' into a YAML raw cell for Quarto; render it back as markdown for nbconvert."
    for c in nb_json['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'raw' and src.startswith('---'):
            t = re.search(r'^title:\s*(.+)$', src, re.M); d = re.search(r'^description:\s*(.+)$', src, re.M)
            md = (f'# {t.group(1).strip(chr(34) + chr(39))}\n\n' if t else '') + (f'> {d.group(1).strip(chr(34) + chr(39))}' if d else '')
            c['cell_type'], c['source'] = 'markdown', md
            c.pop('outputs', None); c.pop('execution_count', None)
    return nb_json

_STYLE = """<style>
body{margin:0} #mb-nav{position:fixed;top:0;left:0;width:220px;height:100%;overflow:auto;background:#f4f6f8;
border-right:1px solid #ddd;padding:1em;font:14px sans-serif;box-sizing:border-box}
#mb-nav a{display:block;padding:.25em 0;color:#224;text-decoration:none} #mb-nav a.cur{font-weight:bold}
#mb-main{margin-left:240px;max-width:1000px;padding:1em}</style>"""

def html_site(out: Path = OUT, n_workers: int = 1):
    "Process the notebooks with nbdev and render each as an HTML page with a shared sidebar."
    import nbformat
    from nbconvert import HTMLExporter
    from nbdev.serve import proc_nbs
    from nbdev.quarto import nbdev_sidebar
    from nbdev.doclinks import _build_modidx
    _build_modidx()
    cache = proc_nbs(str(NBS), n_workers=n_workers)
    nbdev_sidebar.__wrapped__(path=str(NBS), force=True)   # sidebar.yml, as Quarto would use it
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    pages = []
    for nb in notebooks():
        pnb = cache/nb.name
        if not pnb.exists(): raise SystemExit(f'docs: nbdev did not process {nb.name}')
        pages.append((nb, pnb, page_name(nb), _title(json.loads(nb.read_text()), nb.stem)))
    pages.sort(key=lambda p: (p[2] != 'index.html', p[0].name))
    exporter = HTMLExporter(template_name='lab')
    for nb, pnb, name, title in pages:
        nbj = _frontmatter_to_markdown(json.loads(pnb.read_text()))
        body, _ = exporter.from_notebook_node(nbformat.reads(json.dumps(nbj), as_version=4))
        nav = '<nav id="mb-nav"><b>medbook</b>' + ''.join(
            f'<a href="{n}"{" class=cur" if n == name else ""}>{html.escape(t)}</a>' for _, _, n, t in pages) + '</nav>'
        body = re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + _STYLE + nav + '<div id="mb-main">', body, count=1)
        body = body.replace('</body>', '</div></body>')
        (out/name).write_text(body)
    for extra in ('styles.css',):
        if (NBS/extra).exists(): shutil.copy2(NBS/extra, out/extra)
    print(f'docs: {len(pages)} pages in {out}')
    return out

def check(out: Path = OUT) -> list[str]:
    "Problems: notebooks without a page, relative links to missing files or anchors."
    problems = [f'no page for {nb.name}' for nb in notebooks() if not (out/page_name(nb)).exists()]
    for page in sorted(out.glob('*.html')):
        text = page.read_text()
        for href in re.findall(r'href="([^"]+)"', text):
            if re.match(r'^(https?:|mailto:|data:|javascript:)', href) or href.startswith('//'): continue
            target, _, anchor = html.unescape(href).partition('#')
            tp = page if not target else (page.parent/target)
            if not tp.exists(): problems.append(f'{page.name}: broken link {href}'); continue
            if anchor and tp.suffix == '.html' and f'id="{anchor}"' not in tp.read_text():
                problems.append(f'{page.name}: missing anchor {href}')
    return problems

if __name__ == '__main__':
    cmd = sys.argv[1] if len(sys.argv) > 1 else 'html'
    if cmd == 'readme': readme()
    elif cmd == 'html':
        html_site()
        if probs := check(): print('\n'.join(probs)); sys.exit(1)
    elif cmd == 'check':
        if probs := check(): print('\n'.join(probs)); sys.exit(1)
        print('docs: all pages present, all relative links resolve')
    else: sys.exit(__doc__)
