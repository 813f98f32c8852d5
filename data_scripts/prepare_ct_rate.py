"""Preprocess a CT-RATE split once into medbook's cache, in parallel, so that training never waits for it.

    python data_scripts/prepare_ct_rate.py ROOT [--split train] [--spacing 1.5 1.5 3] [--size 224 224 112]
                                          [--workers 4] [--skip-bad] [--cache DIR]

ROOT is CT-RATE's `dataset/` folder (see nbs/01_ct_io.ipynb for the layout). Each volume is read, checked, put in HU
(volumes already in HU are detected and not rescaled twice), reoriented to RAS, resampled, windowed to [-1, 1] and
cropped/padded, then written atomically to the cache that `CTRateDataset(ROOT, split, CTPreprocess(...))` reads.
A bad volume stops the run with a message naming its file, unless --skip-bad: then it is logged, counted and listed.
Running it again only does what is missing.
"""
import argparse, sys
import torch
from medbook.core import DataError, progress
from medbook.ct.io import CTPreprocess, CTRateDataset


class _Prep(torch.utils.data.Dataset):
    def __init__(self, ds, skip_bad): self.ds, self.skip_bad = ds, skip_bad
    def __len__(self): return len(self.ds)
    def __getitem__(self, i):
        try: self.ds._tensors(i); return i, ''
        except DataError as e:
            if not self.skip_bad: raise
            return i, str(e)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('root', help="CT-RATE's dataset/ folder")
    ap.add_argument('--split', default='train')
    ap.add_argument('--spacing', type=float, nargs=3, default=[1.5, 1.5, 3.0], help='target x y z spacing (mm)')
    ap.add_argument('--size', type=int, nargs=3, default=[224, 224, 112], help='x y z voxels after crop/pad')
    ap.add_argument('--workers', type=int, default=2, help='preprocessing processes')
    ap.add_argument('--skip-bad', action='store_true', help='log, count and list bad volumes instead of stopping')
    ap.add_argument('--cache', default=None, help='cache folder (default: under $MEDBOOK_HOME/ct-cache)')
    a = ap.parse_args(argv)
    prep = CTPreprocess(spacing=tuple(a.spacing), size=tuple(a.size))
    try:
        ds = CTRateDataset(a.root, a.split, prep=prep, cache=a.cache or True, skip_bad=a.skip_bad)
        dl = torch.utils.data.DataLoader(_Prep(ds, a.skip_bad), batch_size=None, num_workers=a.workers)
        bad = [(ds.records[i].name, err) for i, err in progress(dl, total=len(ds), desc=f'preprocessing {a.split}') if err]
    except DataError as e:
        print(f'prepare_ct_rate: {e}', file=sys.stderr); return 1
    skipped = ds.skipped + bad
    print(f'{len(ds) - len(bad)} volumes cached in {ds.cache_dir}; {len(skipped)} skipped')
    for name, why in skipped: print(f'  skipped {name}: {why}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
