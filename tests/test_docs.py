"The offline documentation: every notebook renders to a page and every internal link resolves."
import importlib.util, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('mb_docs', ROOT/'tools'/'docs.py')
docs = importlib.util.module_from_spec(spec); spec.loader.exec_module(docs)

def test_offline_docs_build(tmp_path):
    out = docs.html_site(tmp_path/'site')
    assert docs.check(out) == []
    pages = {p.name for p in out.glob('*.html')}
    assert {'index.html', 'core.html', 'cli.html'} <= pages
    core = (out/'core.html').read_text()
    assert 'id="mb-nav"' in core and 'href="cli.html"' in core
    assert 'cached' in core and 'save_checkpoint' in core   # show_doc of the exported API

def test_check_finds_broken_links(tmp_path):
    (tmp_path/'index.html').write_text('<a href="nowhere.html">x</a><a href="index.html#nope">y</a><a href="https://x.org">z</a>')
    probs = docs.check(tmp_path)
    assert any('broken link nowhere.html' in p for p in probs) and any('missing anchor index.html#nope' in p for p in probs)
