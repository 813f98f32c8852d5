"""Parse an Open-i / IU X-ray report archive (the NLMCXR_reports.tgz layout: one XML per report) into medbook's files.

    python data_scripts/prepare_iu_reports.py ARCHIVE OUT_DIR [--limit N]

writes OUT_DIR/reports.jsonl, labels.csv, ctrate_reports.csv, ctrate_labels.csv and errors.csv (see nbs/03_reports.ipynb).
Files that cannot be parsed are listed in errors.csv and do not stop the run. Without ARCHIVE ('-'), the copy bundled
in torchxrayvision is used. The output directory is written through a temporary sibling and renamed, so a crash
leaves nothing half-written.
"""
import argparse, os, shutil, sys, tempfile
from pathlib import Path

from medbook.core import DataError
from medbook.data.reports import write_reports_artifact


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('archive', help="the report archive (.tgz), or '-' for torchxrayvision's copy")
    ap.add_argument('out', help='output directory (must not exist)')
    ap.add_argument('--limit', type=int, default=None, help='read only the first N files')
    a = ap.parse_args(argv)
    out = Path(a.out)
    if out.exists(): ap.error(f'{out} exists: choose a new directory')
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.', dir=out.parent))
    try:
        write_reports_artifact(tmp, None if a.archive == '-' else a.archive, a.limit)
        os.replace(tmp, out)
    except DataError as e:
        shutil.rmtree(tmp, ignore_errors=True); print(f'error: {e}', file=sys.stderr); return 1
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True); raise
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
