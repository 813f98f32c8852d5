"""Installs medbook from settings.ini (metadata) and requirements.txt (the one dependency list)."""
from configparser import ConfigParser
from pathlib import Path
import setuptools

here = Path(__file__).parent
cfg = ConfigParser(delimiters=['='])
cfg.read(here/'settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

run_reqs, dev_reqs = [], []
cur = run_reqs
for line in (here/'requirements.txt').read_text().splitlines():
    s = line.split('#', 1)[0].strip()
    if line.strip().lower().startswith('# [dev]'): cur = dev_reqs
    if s: cur.append(s)

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    license='Apache-2.0', author=cfg['author'], author_email=cfg['author_email'],
    url=cfg['git_url'], packages=setuptools.find_packages(include=['medbook', 'medbook.*']),
    include_package_data=True, python_requires='>=' + cfg['min_python'],
    install_requires=run_reqs, extras_require={'dev': dev_reqs},
    long_description=(here/'README.md').read_text(encoding='utf-8') if (here/'README.md').exists() else '',
    long_description_content_type='text/markdown',
    entry_points={'console_scripts': [cfg['console_scripts']], 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False)
