"""Reasoning-path search (14_search): bad LLM replies, a client that fails mid-dataset, the SFT builder."""
import json, os, random, subprocess, sys
from collections import Counter
from pathlib import Path
import pytest
from medbook.core import DataError, FunctionClient
from medbook.reasoning.problems import generate_problems, filter_verdict
import medbook.reasoning.search as S

@pytest.fixture(scope='module')
def probs():
    return [p for p in generate_problems(6, seed=11) if filter_verdict(p) == 'Pass']

def test_malformed_replies_are_retried_and_counted(probs):
    t = S.ScriptedTeacher(probs, p_malformed=0.3, seed=2)
    sft, stats = S.search_dataset(probs, t, seed=2)
    assert stats['invalid_replies_retried'] > 0 and t.calls['malformed'] == stats['invalid_replies_retried']
    assert stats['problems'] == len(probs) and len(sft) == stats['verified']
    assert sum(stats['status'].values()) == len(probs)

def test_strategy_rules(probs):
    t = S.ScriptedTeacher(probs, p_mistake=1.0, strategy_success={k: 0.0 for k in S.STRATEGIES}, seed=0)
    rec = S.search_path(probs[0], t, N=3, T=3, rng=random.Random(0))
    assert not rec['success'] and rec['status'] == 'exhausted' and len(rec['steps_tried']) == 9
    firsts = [s for s in rec['steps_tried'] if s['depth'] == 1]
    assert len(firsts) == 3 and all(s['strategy'] != 'Backtracking' for s in firsts)

def test_interrupted_run_writes_nothing(tmp_path, probs):
    t = S.ScriptedTeacher(probs, seed=0); n = Counter()
    def dies(prompt):
        n['calls'] += 1
        if n['calls'] > 10: raise KeyboardInterrupt
        return t._reply(prompt)
    with pytest.raises(KeyboardInterrupt): S.search_dataset(probs, FunctionClient(dies), tmp_path/'out')
    assert not (tmp_path/'out').exists() or not any((tmp_path/'out').iterdir())

def test_sft_loader_fixture(tmp_path):
    f = tmp_path/'medical_o1_sft.json'
    rec = {'Question': 'A 61-year-old woman ... What is the most likely diagnosis?', 'Complex_CoT': "Okay, let's see. Hmm, ... wait ...", 'Response': 'The most likely diagnosis is ...'}
    f.write_text(json.dumps([rec])); assert S.load_sft(f) == [rec]
    assert S.sft_text(rec).startswith('## Thinking\n\n') and '\n\n## Final Response\n\n' in S.sft_text(rec)
    f.write_text(json.dumps([{'Question': 'Q', 'Response': 'R'}]))
    with pytest.raises(DataError, match="row 0: 'Complex_CoT' is missing"): S.load_sft(f)
    f.write_text('[{"Question"')
    with pytest.raises(DataError, match='not valid JSON'): S.load_sft(f)

def test_cli_builds_sft(tmp_path):
    env = {**os.environ, 'MEDBOOK_HOME': str(tmp_path), 'MEDBOOK_PROGRESS': '0'}
    r = subprocess.run([sys.executable, '-m', 'medbook.cli', 'data', 'build', 'complex-cot-sft', '--scale', 'tiny'], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    d = next((tmp_path/'artifacts').glob('complex-cot-sft-*'))
    sft = S.load_sft(d/'sft.json'); stats = json.loads((d/'stats.json').read_text())
    assert len(sft) == stats['verified'] > 0 and (d/'search_stats.png').exists()
