"The `medbook` command as a user meets it: help, one-line errors with status 2, a tiny run, the report."
import json, subprocess, sys
from pathlib import Path

def medbook(*args, cwd=None):
    return subprocess.run([sys.executable, '-m', 'medbook.cli', *args], capture_output=True, text=True, cwd=cwd)

def test_help():
    r = medbook('--help')
    assert r.returncode == 0 and 'run' in r.stdout and 'data' in r.stdout and 'report' in r.stdout
    r = medbook()
    assert r.returncode == 0 and 'Usage' in r.stdout

def test_bad_input_is_one_line_status_2():
    for args in (['run', 'no-such-experiment'], ['run', 'core-resume', '--scale', 'enormous'],
                 ['run', 'core-resume', '--no-such-flag'], ['data', 'build', 'no-such-dataset'], ['frobnicate']):
        r = medbook(*args)
        assert r.returncode == 2, (args, r)
        assert 'Traceback' not in r.stderr and r.stderr.count('\n') == 1, (args, r.stderr)
        assert r.stderr.startswith('medbook: error:')

def test_tiny_run_and_report(tmp_path):
    r = medbook('run', 'core-resume', '--scale', 'tiny', '--runs-dir', str(tmp_path))
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path/'core-resume'/'results.json').read_text())
    assert res['scale'] == 'tiny' and res['seed'] == 0 and res['seconds'] > 0
    assert set(res['versions']) >= {'medbook', 'torch'}
    assert res['rows']['resumed (full state)']['max_abs_weight_diff'] == [0.0, 0.0, 0.0]
    (tmp_path/'REPORT.md').unlink()
    r = medbook('report', '--runs-dir', str(tmp_path))
    assert r.returncode == 0 and '## core-resume' in (tmp_path/'REPORT.md').read_text()

def test_malformed_results_json(tmp_path):
    (tmp_path/'x').mkdir(); (tmp_path/'x'/'results.json').write_text('{not json')
    r = medbook('report', '--runs-dir', str(tmp_path))
    assert r.returncode == 1 and 'malformed JSON' in r.stderr and 'results.json' in r.stderr
