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


def test_coder_initial_weights_depend_on_the_seed_only():
    "Built from a config or from keyword arguments, a coder starts from the same weights at a seed."
    import torch
    from medbook.icd import GKICoder, GKICoderConfig
    torch.manual_seed(3); a = GKICoder(GKICoderConfig(n_codes=5, hidden=8, value_proj=False))
    torch.manual_seed(3); b = GKICoder(n_codes=5, hidden=8, value_proj=False)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_gki_configs_are_frozen_and_validated():
    from dataclasses import replace, FrozenInstanceError
    from medbook.core import ConfigError
    from medbook.icd import GKIConfig, GKI_TRAIN, GKI_CONFIGS, ABLATION, GKI_METHOD, gki_config
    c = gki_config('small').coder(**ABLATION[GKI_METHOD])
    assert (c.epochs, c.train.lr, c.train.schedule, c.train.grad_clip) == (3, 3e-3, 'linear', None)
    with pytest.raises(FrozenInstanceError): c.lam = 0.5
    for bad, msg in ((dict(dropout=1.0), 'dropout must be in'), (dict(epochs=0), 'epochs must be >= 1'),
                     (dict(desc_norm='init'), 'desc_norm must be > 0'), (dict(train={'lr': 1}), 'train must be a TrainConfig')):
        with pytest.raises(ConfigError, match='GKIConfig: ' + msg): GKIConfig(**bad)
    with pytest.raises(ConfigError, match='GKIExperimentConfig: n must be None'): replace(GKI_CONFIGS['tiny'], n=(4, 4))
    with pytest.raises(ConfigError, match='unknown scale'): gki_config('huge')


def test_training_is_a_function_of_the_seed():
    "Two runs at one seed give the same weights and history; the warm-up has at least one step."
    import torch
    from dataclasses import replace
    from medbook.icd import IcdKnowledge, make_set, train_coder, GKIConfig, GKI_TRAIN
    know = IcdKnowledge(['J90', 'I51.7'], {'J90': 'Pleural effusion', 'I51.7': 'Cardiomegaly'}, {'J90': [], 'I51.7': ['Cardiac enlargement']},
                        {'J90': 'Respiratory', 'I51.7': 'Circulatory'})
    g = torch.Generator().manual_seed(0)
    states = [torch.randn(n, 8, generator=g) for n in (5, 3, 4, 6)]
    bank = {e: torch.randn(2, 8, generator=g) for e in ['Pleural effusion', 'Cardiomegaly', 'Cardiac enlargement', 'Respiratory, Pleural effusion',
                                                         'Circulatory, Cardiomegaly', 'Circulatory, Cardiac enlargement']}
    tr = make_set([{'text': 'a', 'label': ['J90']}, {'text': 'b', 'label': ['I51.7']}, {'text': 'c', 'label': []}, {'text': 'd', 'label': ['J90', 'I51.7']}],
                  know.codes, states)
    cfg = GKIConfig(epochs=2, train=replace(GKI_TRAIN, batch_size=2))
    desc = [torch.randn(3, 8, generator=g) for _ in range(2)]
    (m1, h1), (m2, h2) = (train_coder(tr, tr, know, cfg, seed=1, bank=bank, desc_states=desc) for _ in range(2))
    assert h1 == h2 and all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


def test_word_attention_merges_wordpieces():
    import numpy as np
    from medbook.core import ConfigError
    from medbook.icd import word_attention
    words, w = word_attention(['[CLS]', 'small', 'e', '##ff', '##usion', '.', '[SEP]'], [0.1, 0.2, 0.1, 0.1, 0.2, 0.2, 0.1])
    assert words == ['small', 'effusion', '.'] and np.allclose(w, [0.2, 0.4, 0.2])
    with pytest.raises(ConfigError, match='3 tokens but 2 weights'): word_attention(['a', 'b', 'c'], [1, 2])
