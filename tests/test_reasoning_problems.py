"""Verifiable problems (13_verifiable): the paper's file format, bad input, the cached builder, reward-function shape."""
import doctest, json, os, random, subprocess, sys
from pathlib import Path
import pytest
import medbook.reasoning.problems as P
from medbook.core import DataError, ConfigError

def test_doctests():
    res = doctest.testmod(P, optionflags=doctest.ELLIPSIS)
    assert res.attempted >= 3 and res.failed == 0

def test_load_real_format_fixture(tmp_path):
    f = tmp_path/'medical_o1_verifiable_problem.json'
    recs = [{'Open-ended Verifiable Question': 'Which enzyme is deficient in classic phenylketonuria?', 'Ground-True Answer': 'Phenylalanine hydroxylase'},
            {'Open-ended Verifiable Question': 'What is the first-line treatment of anaphylaxis?', 'Ground-True Answer': 'Intramuscular epinephrine'}]
    f.write_text(json.dumps(recs, ensure_ascii=False, indent=2))
    ps = P.load_problems(f)
    assert [p.to_json() for p in ps] == recs and all(p.family == 'unknown' for p in ps)

@pytest.mark.parametrize('text,msg', [
    ('not json', 'not valid JSON'),
    ('{"a": 1}', 'expected a JSON list'),
    ('[]', 'no problems'),
    ('[{"Open-ended Verifiable Question": "Q?", "Ground-True Answer": "A"}, 3]', 'row 1: record is a int'),
    ('[{"Open-ended Verifiable Question": 5, "Ground-True Answer": "A"}]', 'row 0: \'Open-ended Verifiable Question\' is empty or not a string'),
    ('[{"Open-ended Verifiable Question": "Q?", "Ground-True Answer": "A", "meta": []}]', "'meta' is not an object"),
])
def test_bad_problem_files(tmp_path, text, msg):
    f = tmp_path/'bad.json'; f.write_text(text)
    with pytest.raises(DataError, match=msg.replace('(', r'\(').replace(')', r'\)')): P.load_problems(f)

def test_gold_that_does_not_parse_names_file_and_row(tmp_path):
    f = tmp_path/'r.jsonl'
    f.write_text(json.dumps({'Open-ended Verifiable Question': 'BP 120/80: MAP?', 'Ground-True Answer': 'ninety', 'family': 'calc', 'meta': {'unit': 'mmHg'}}) + '\n')
    p = P.load_problems(f)[0]
    with pytest.raises(DataError, match=r'r.jsonl row 0: gold answer does not parse for family calc'): P.check_gold(p, f, 0)

def test_save_is_atomic(tmp_path, monkeypatch):
    ps = P.generate_problems(2, seed=0)
    class Boom(Exception): pass
    def bad_replace(*a, **k): raise Boom()
    monkeypatch.setattr(P.os, 'replace', bad_replace)
    with pytest.raises(Boom): P.save_problems(ps, tmp_path/'x.json')
    assert list(tmp_path.iterdir()) == []

def test_rewards_have_trl_shape():
    comps = ['The answer is J18.9.', [{'role': 'assistant', 'content': '## Thinking\n\nhmm\n\n## Final Response\n\nj189'}]]
    sols = ['J18.9', 'J18.9']
    kw = dict(prompts=['q1', 'q2'], completion_ids=[[1], [2]], trainer_state=None)  # what GRPOTrainer passes along
    for fn in (P.exact_match_reward, P.normalized_match_reward, P.LLMJudge()):
        out = fn(comps, sols, **kw)
        assert isinstance(out, list) and len(out) == 2 and all(x is None or isinstance(x, float) for x in out)
    assert P.normalized_match_reward(comps, sols) == [1.0, 1.0]

def test_builder_is_cached_and_split(tmp_path, monkeypatch):
    monkeypatch.setenv('MEDBOOK_HOME', str(tmp_path))
    d = P.verifiable_problems('tiny', 0)
    stats = json.loads((d/'filter.json').read_text())
    assert stats['kept'] > 0 and stats['split']['train'] + stats['split']['heldout'] == stats['kept']
    assert all(v > 0 for v in stats['kept_by_family'].values())
    mtime = (d/'problems.json').stat().st_mtime
    assert P.verifiable_problems('tiny', 0) == d and (d/'problems.json').stat().st_mtime == mtime
    tr, ho = P.load_split('train', 'tiny', 0), P.load_split('heldout', 'tiny', 0)
    assert not {p.question for p in tr} & {p.question for p in ho}
    with pytest.raises(ConfigError, match='unknown split'): P.load_split('test', 'tiny', 0)

def test_cli_data_build_and_run(tmp_path):
    env = {**os.environ, 'MEDBOOK_HOME': str(tmp_path/'home'), 'MEDBOOK_PROGRESS': '0'}
    r = subprocess.run([sys.executable, '-m', 'medbook.cli', 'data', 'build', 'verifiable-problems', '--scale', 'tiny'], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert list((tmp_path/'home'/'artifacts').glob('verifiable-problems-*/train.json'))
    r = subprocess.run([sys.executable, '-m', 'medbook.cli', 'run', 'verifier-accuracy', '--scale', 'tiny', '--runs-dir', str(tmp_path/'runs')], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path/'runs'/'verifier-accuracy'/'results.json').read_text())
    assert set(res['rows']) == {'exact match', 'normalised match', 'model-based (logistic regression)', 'LLM judge (scripted, offline)'}
    assert all(len(v['accuracy']) == 3 for v in res['rows'].values())

@pytest.mark.benchmark(group='verifier')
def test_bench_exact_match_reference(benchmark):
    lab = P.labelled_responses(P.generate_problems(25, seed=0), random.Random(0))
    R, G = [r['response'] for r in lab], [r['gold'] for r in lab]
    benchmark.pedantic(lambda: P.exact_match_reward(R, G), rounds=5, iterations=1)

@pytest.mark.benchmark(group='verifier')
def test_bench_scripted_judge(benchmark):
    lab = P.labelled_responses(P.generate_problems(25, seed=0), random.Random(0))
    R, G = [r['response'] for r in lab], [r['gold'] for r in lab]
    judge = P.LLMJudge()
    benchmark.pedantic(lambda: judge(R, G), rounds=5, iterations=1)
