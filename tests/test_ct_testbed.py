"""Realism guards of the chest-CT testbed: every inserted lesion type lands where it should, with a plausible HU,
its label set and a grounded sentence naming its place; patients are deterministic by seed."""
import numpy as np, pytest
from medbook.ct.io import CT_RATE_ABNORMALITIES
from medbook.data.ct_testbed import (INSERTED_TYPES, LOBES, S, BONES, ct_base, make_patient, smooth_base)
from medbook.data.ct_testbed import testbed_config as _config  # not collected as a test

HU = {'Lung nodule': (-700, 600), 'Lung opacity': (-800, -300), 'Consolidation': (-150, 80), 'Atelectasis': (-300, 80),
      'Emphysema': (-1050, -900), 'Mosaic attenuation pattern': (-1050, -800), 'Pulmonary fibrotic sequela': (-600, 50),
      'Pleural effusion': (-60, 60), 'Pericardial effusion': (-60, 60), 'Lymphadenopathy': (0, 120), 'Hiatal hernia': (-950, 80),
      'Arterial wall calcification': (150, 1100), 'Coronary artery wall calcification': (150, 1100), 'Medical material': (300, 2000),
      'Cardiomegaly': (-100, 400)}

@pytest.fixture(scope='module')
def setup():
    cfg = _config('small'); return smooth_base(ct_base(), cfg), cfg

@pytest.mark.parametrize('seed', [0, 1])
def test_every_type_plausible(setup, seed):
    base, cfg = setup
    p = make_patient(base, cfg, seed, 'train', 7, force=list(INSERTED_TYPES))
    hu, lm, st = p['hu'].astype(float), p['lesion_map'], p['structures']
    got = {l['label'] for l in p['lesions']}
    assert len(got) >= 12, got  # nearly every type finds room in one patient
    lobe_code = {v: k for k, v in LOBES.items()}
    for l in p['lesions']:
        m = lm == l['ids'][0]
        assert m.sum() == l['voxels'] > 0
        lo, hi = HU[l['label']]; med = float(np.median(hu[m]))
        assert lo <= med <= hi, (l['label'], med)
        assert not np.isin(st[m], BONES).any() or l['label'] in ('Medical material',), l['label']
        if l['location'] in lobe_code: assert (st[m] == lobe_code[l['location']]).mean() > 0.95
        if l['label'] in ('Emphysema', 'Mosaic attenuation pattern'): assert np.isin(st[m], list(LOBES)).all()
        assert p['labels'][CT_RATE_ABNORMALITIES.index(l['label'])] == 1
        sent = [s for s in p['sentences'] if l['ids'][0] in s['lesion_ids'] and s['field'] == 'findings']
        assert len(sent) == 1 and sent[0]['label'] == l['label']
        loc = l['location'].split()[0] if l['location'] not in ('heart', 'thoracic aorta', 'coronary arteries') else None
        if l['label'] in ('Lung nodule', 'Consolidation', 'Lung opacity', 'Atelectasis', 'Pleural effusion'):
            assert loc in sent[0]['text'].lower() or 'bilateral' in sent[0]['text'].lower(), sent[0]['text']
    assert p['labels'].sum() == len(got)

def test_deterministic_and_varied(setup):
    base, cfg = setup
    a, b = make_patient(base, cfg, 0, 'train', 3), make_patient(base, cfg, 0, 'train', 3)
    assert np.array_equal(a['hu'], b['hu']) and a['findings'] == b['findings']
    c = make_patient(base, cfg, 0, 'train', 4)
    assert not np.array_equal(a['hu'], c['hu']) and np.abs(a['hu'].astype(int) - c['hu']).mean() > 20
