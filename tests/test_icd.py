"Reliability of medbook.icd: the MIMIC-style loader on tiny fixtures, safe unpickling, GKI-ICD knowledge files, bad input."
import json, os, pickle
from pathlib import Path

import pytest

from medbook.core import DataError
from medbook.icd import (load_coding_split, write_gki_knowledge, read_gki_knowledge, IcdKnowledge, mesh_to_icd,
                         validate_mapping, check_code)

RECORDS = [{'subject_id': 7, 'hadm_id': 70, 'text': 'Moderate cardiomegaly. Small bilateral pleural effusions.', 'label': ['I51.7', 'J90']},
           {'subject_id': 8, 'hadm_id': 80, 'text': 'Lungs are clear.', 'label': []}]


@pytest.mark.parametrize('fmt', ['pkl', 'json', 'jsonl', 'csv'])
def test_loader_reads_every_format(tmp_path, fmt):
    p = tmp_path/f'train.{fmt}'
    if fmt == 'pkl': p.write_bytes(pickle.dumps(RECORDS, protocol=2))   # protocol 2 names builtins classes
    elif fmt == 'json': p.write_text(json.dumps(RECORDS))
    elif fmt == 'jsonl': p.write_text('\n'.join(json.dumps(r) for r in RECORDS))
    else: p.write_text('hadm_id,TEXT,LABELS\n70,"Moderate cardiomegaly. Small bilateral pleural effusions.",I51.7;J90\n80,Lungs are clear.,\n')
    recs = load_coding_split(p)
    assert [r['label'] for r in recs] == [['I51.7', 'J90'], []]
    assert recs[0]['text'].startswith('Moderate cardiomegaly')


class _Evil:
    def __reduce__(self): return (os.system, ('touch /tmp/medbook-icd-pwned',))


def test_pickle_with_a_class_is_refused_and_never_run(tmp_path):
    marker = Path('/tmp/medbook-icd-pwned'); marker.unlink(missing_ok=True)
    p = tmp_path/'evil.pkl'; p.write_bytes(pickle.dumps([{'text': 'x', 'label': ['J90'], 'x': _Evil()}]))
    with pytest.raises(DataError, match='refusing to load'): load_coding_split(p)
    assert not marker.exists()


@pytest.mark.parametrize('recs,msg', [
    ([{'text': 'effusion', 'label': ['J90', 'Z99.999']}], "row 0: 'Z99.999' is not an ICD-10-CM"),
    ([RECORDS[0], {'text': '', 'label': []}], 'row 1: empty note'),
    ([{'text': 'effusion', 'label': 'J90'}], 'labels must be a list'),
    ([{'text': 'effusion'}], 'lacks "text" or "label"'),
    ({'text': 'effusion', 'label': []}, 'expected a JSON list'),
])
def test_bad_records_name_file_and_row(tmp_path, recs, msg):
    p = tmp_path/'dev.json'; p.write_text(json.dumps(recs))
    with pytest.raises(DataError, match=msg) as e: load_coding_split(p)
    assert 'dev.json' in str(e.value)


def test_malformed_and_missing_files(tmp_path):
    (tmp_path/'a.json').write_text('[{"text": ')
    with pytest.raises(DataError, match='malformed JSON'): load_coding_split(tmp_path/'a.json')
    with pytest.raises(DataError, match='file not found'): load_coding_split(tmp_path/'nope.json')
    (tmp_path/'a.txt').write_text('x')
    with pytest.raises(DataError, match='unknown split format'): load_coding_split(tmp_path/'a.txt')


def test_gki_files_round_trip_and_leave_nothing_half_written(tmp_path):
    codes = ['I51.7', 'J90', 'J98.4', 'M47.814', 'S22.39XA']
    write_gki_knowledge(codes, tmp_path, {c: {'train': 2, 'dev': 1, 'test': 0} for c in codes})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(['code_description.csv', 'code_synonym.json', 'code_hierarchy.csv',
                                                                 'group_description.csv', 'extra_code_description.csv', 'code_distribution.csv'])
    assert read_gki_knowledge(tmp_path) == IcdKnowledge.from_codes(codes)
    (tmp_path/'code_hierarchy.csv').write_text('code\tcode1\n')
    with pytest.raises(DataError, match='missing column'): read_gki_knowledge(tmp_path)


def test_mapping_is_valid_and_maps_iu_terms():
    t = validate_mapping()
    assert t.code.map(check_code).eq(t.code).all()
    assert mesh_to_icd(['Thoracic Vertebrae/degenerative/mild', 'Pulmonary Atelectasis/base/left', 'normal']) == ['M47.814', 'J98.11']


def test_coder_round_trip(tmp_path):
    "A GKI-ICD coder saves as config.json + model.safetensors and loads back with identical weights and logits."
    import torch
    from medbook.icd import GKICoder
    torch.manual_seed(0); m = GKICoder(n_codes=4, hidden=8, dropout=0.0).eval()
    m.save_pretrained(tmp_path/'c'); back = GKICoder.from_pretrained(tmp_path/'c')
    assert back.config.n_codes == 4 and all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), back.state_dict().values()))
    x, mask = torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool)
    assert torch.allclose(back(x, mask)[0], m(x, mask)[0])
