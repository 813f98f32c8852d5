"""Reliability tests of medbook.data.reports: real-format fixtures (Open-i XML in a tar), bad input, stable split."""
import json, tarfile
from pathlib import Path

import pytest

from medbook.core import DataError, ConfigError, DATASETS
from medbook.data.reports import (parse_report_xml, load_iu_corpus, reports_frame, write_report_xml, split_of, find_mentions,
                                  report_labels, clean_report_text, split_sentences, load_reports, CT_RATE_LABELS, LABELS, mesh_labels)


@pytest.fixture
def archive(tmp_path):
    "A tiny Open-i archive: two good reports, one truncated XML, one wrong root, one report missing its FINDINGS."
    d = tmp_path/'ecgen-radiology'; d.mkdir()
    write_report_xml(d/'1.xml', 'CXR1', dict(INDICATION='Cough', COMPARISON='None.', FINDINGS='There is no pneumothorax or pleural effusion. XXXX heart size.',
                                             IMPRESSION='Normal chest x-XXXX.'), ['normal'])
    write_report_xml(d/'10.xml', 'CXR10', dict(INDICATION='SOB', COMPARISON='None.', FINDINGS='Mild cardiomegaly. Small right pleural effusion.',
                                               IMPRESSION='1. Cardiomegaly. 2. Right effusion.'), ['Cardiomegaly/mild', 'Pleural Effusion/right/small'])
    (d/'2.xml').write_bytes(b'<?xml version="1.0"?><eCitation><uId id="CXR2"/><MedlineCitation>')
    (d/'3.xml').write_bytes(b'<?xml version="1.0"?><html><body/></html>')
    write_report_xml(d/'4.xml', 'CXR4', dict(INDICATION='Pain', COMPARISON='None.', IMPRESSION='No acute disease.'))
    (d/'README.txt').write_text('not a report')
    p = tmp_path/'reports.tgz'
    with tarfile.open(p, 'w:gz') as tf: tf.add(d, 'ecgen-radiology')
    return p


def test_corpus_reports_bad_files_per_file(archive):
    c = load_iu_corpus(archive)
    assert [r.id for r in c.reports] == ['CXR1', 'CXR4', 'CXR10']          # natural order, broken files left out
    fatal = {e['file']: e['problem'] for e in c.errors if e['fatal']}
    assert set(fatal) == {'ecgen-radiology/2.xml', 'ecgen-radiology/3.xml'}
    assert 'malformed XML' in fatal['ecgen-radiology/2.xml'] and 'expected <eCitation>' in fatal['ecgen-radiology/3.xml']
    assert [e['problem'] for e in c.errors if e['file'] == 'ecgen-radiology/4.xml'] == ['FINDINGS section is missing']
    df = reports_frame(c).set_index('id')
    assert df.loc['CXR1', 'impression'] == 'Normal chest x-ray.'
    assert df.loc['CXR1', 'labels'] == {'Pneumothorax': 0, 'Pleural effusion': 0}
    assert df.loc['CXR10', 'labels'] == {'Cardiomegaly': 1, 'Pleural effusion': 1}
    assert df.loc['CXR10', 'problems'] == ['cardiomegaly', 'pleural effusion']
    assert df.loc['CXR10', 'sentences'] == ['Mild cardiomegaly.', 'Small right pleural effusion.', 'Cardiomegaly.', 'Right effusion.']


def test_unreadable_archives(tmp_path):
    (tmp_path/'x.tgz').write_bytes(b'\x1f\x8b garbage')
    with pytest.raises(DataError, match='cannot open the archive'): load_iu_corpus(tmp_path/'x.tgz')
    d = tmp_path/'only-bad'; d.mkdir(); (d/'1.xml').write_text('<eCitation>')
    with tarfile.open(tmp_path/'bad.tgz', 'w:gz') as tf: tf.add(d, 'r')
    with pytest.raises(DataError, match='no readable report'): load_iu_corpus(tmp_path/'bad.tgz')


def test_parse_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match='missing.xml: cannot read'): parse_report_xml(tmp_path/'missing.xml')
    (tmp_path/'e.xml').write_text('')
    with pytest.raises(DataError, match='e.xml: file is empty'): parse_report_xml(tmp_path/'e.xml')


@pytest.mark.parametrize('sentence,expected', [
    ('No pneumothorax, pleural effusion, or focal airspace consolidation.', {('Pneumothorax', 'negative'), ('Pleural effusion', 'negative'), ('Consolidation', 'negative')}),
    ('Right lower lobe pneumonia cannot be excluded.', {('Pneumonia', 'uncertain')}),
    ('The heart is not enlarged.', {('Cardiomegaly', 'negative')}),
    ('Heart size within normal limits.', {('Cardiomegaly', 'negative')}),
    ('Calcified granuloma, no acute disease.', {('Calcified granuloma', 'positive')}),
    ('Pericardial effusion is present.', {('Pericardial effusion', 'positive')}),
    ('Mild levoscoliosis of the thoracic spine.', {('Scoliosis', 'positive')}),
    ('The previously seen effusion has resolved.', {('Pleural effusion', 'negative')}),
    ('No significant change in right pneumothorax.', {('Pneumothorax', 'positive')}),
])
def test_negation(sentence, expected):
    assert {(m.label, m.status) for m in find_mentions(sentence)} == expected


def test_labels_and_split():
    assert len(CT_RATE_LABELS) == 18 and len(set(LABELS)) == len(LABELS)
    assert report_labels(['No effusion.', 'Possible small effusion.']) == {'Pleural effusion': -1}
    assert split_of('CXR1') == split_of('CXR1') and split_of('CXR1') in ('train', 'val', 'test')
    with pytest.raises(ConfigError): split_of('CXR1', (0.9, 0.2, 0.0))
    assert mesh_labels(['Aorta/tortuous', 'Calcinosis/aorta']) == {'Tortuous aorta', 'Arterial wall calcification'}


def test_cleaning_and_sentences():
    assert clean_report_text('  XXXX   XXXX . .') == '[DEID] [DEID].'
    assert split_sentences('Heart size normal. 2. Lungs clear.') == ['Heart size normal.', 'Lungs clear.']


def test_real_corpus_builder(tmp_path):
    assert 'reports' in DATASETS
    df = load_reports('small')
    assert len(df) == 3955 and df.id.is_unique
    assert set(df.split) == {'train', 'val', 'test'}
    assert (df.findings.str.contains('XXXX')).sum() == 0
    # the split is a function of the id only
    assert all(split_of(i) == s for i, s in zip(df.id[:200], df.split[:200]))
    bad = tmp_path/'r'; bad.mkdir(); (bad/'reports.jsonl').write_text(json.dumps({'id': 'CXR1'}) + '\n')
    with pytest.raises(DataError, match='missing column'): load_reports(bad)


def test_prepare_script(archive, tmp_path):
    import importlib.util, pandas as pd
    spec = importlib.util.spec_from_file_location('prep', Path(__file__).parents[1]/'data_scripts'/'prepare_iu_reports.py')
    prep = importlib.util.module_from_spec(spec); spec.loader.exec_module(prep)
    assert prep.main([str(archive), str(tmp_path/'out')]) == 0
    assert len(load_reports(tmp_path/'out')) == 3
    ct = pd.read_csv(tmp_path/'out'/'ctrate_reports.csv')
    assert list(ct.columns) == ['VolumeName', 'Findings_EN', 'Impressions_EN']
    assert prep.main([str(tmp_path/'missing.tgz'), str(tmp_path/'out2')]) == 1
    assert not (tmp_path/'out2').exists() and not [p for p in tmp_path.iterdir() if p.name.startswith('.out2')]
