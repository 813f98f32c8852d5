"""Verifier RL (15_verifier_rl): the paper's reward against reward hacking, bad configs, resuming, and two torchrun ranks."""
import pytest, torch
from medbook.core import ConfigError, DataError
from _torchrun import run_two_ranks
import medbook.reasoning.rl as R

THINK = 'Okay, so age 78: 2; male: 0; hypertension: 1. Total = 3.'
GOOD = R.o1_target(THINK, '**Answer:** 3\n\n**Why:** age 78: 2; male: 0; hypertension: 1. Total = 3.')

def reward(texts, gold):
    return R.o1_reward()(texts, [gold] * len(texts))

# ---- reward-hacking probes: each output gets the reward the paper's rule gives it
@pytest.mark.parametrize('text, want', [
    (GOOD, 1.0),
    (GOOD + '\n\n## Final Response\n\n**Answer:** 3', 0.0),                                 # several Final Response sections
    (GOOD.replace('## Final Response', '## Final Response\n\n**Answer:** 3\n\n## Final Response'), 0.0),
    (R.o1_target(THINK, ''), 0.1),                                                           # an empty answer
    (R.o1_target(THINK, '**Answer:**'), 0.1),
    (R.o1_target(THINK, '**Answer:** 0, 1, 2, 3, 4, 5, 6, 7, 8, 9'), 0.1),                     # every option listed
    (R.o1_target(THINK, '**Answer:** 3 or 4'), 0.1),
    (R.o1_target('So the answer is 3.', '**Answer:** 5'), 0.1),                               # gold in the thinking, wrong final
    (R.o1_target(THINK, '**Answer:** 4\n\n**Why:** ... Total = 3.'), 0.1),                     # wrong stated answer ending on the gold
    ('## Final Response\n\n**Answer:** 3', 0.0),                                              # missing Thinking
    ('## Thinking\n\nTotal = 3. The answer is 3.', 0.0),                                      # missing Final Response
    ('## Final Response\n\n**Answer:** 3\n\n## Thinking\n\nTotal = 3.', 0.0),                 # order reversed
    ('## Thinking\n\nx\n\n## Thinking\n\ny\n\n## Final Response\n\n**Answer:** 3', 0.0),       # two Thinking sections
    ('The answer is 3.', 0.0),
    ('', 0.0),
])
def test_reward_probes_numeric(text, want):
    assert reward([text], '3') == [want]

def test_reward_probes_text_answer():
    gold = 'Diseases of the respiratory system (J00-J99)'
    every = '; '.join(['Diseases of the respiratory system (J00-J99)', 'Diseases of the circulatory system (I00-I99)', 'Neoplasms (C00-D49)'])
    texts = [R.o1_target('Lungs.', f'**Answer:** {gold}'), R.o1_target('Lungs.', 'The answer is chapter 10.'),
             R.o1_target('?', f'**Answer:** {every}'), R.o1_target(f'It could be {gold}.', '**Answer:** Neoplasms'),
             R.o1_target('?', '**Answer:** Diseases of the respiratory system or of the circulatory system'), R.o1_target('?', '')]
    assert reward(texts, gold) == [1.0, 1.0, 0.1, 0.1, 0.1, 0.1]

def test_reward_takes_trl_conversational_completions():
    conv = [[{'role': 'assistant', 'content': GOOD}], [{'role': 'assistant', 'content': 'no format'}]]
    assert R.o1_reward()(conv, ['3', '3']) == [1.0, 0.0]

def test_reward_passes_none_through_and_checks_lengths():
    unsure = lambda completions, solution, **kw: [None] * len(completions)
    assert R.o1_reward(unsure)([GOOD, 'x'], ['3', '3']) == [None, 0.0]
    with pytest.raises(ValueError): R.o1_reward()([GOOD, GOOD], ['3'])

def test_paper_values_are_parameters():
    r = R.o1_reward(correct=2.0, incorrect=-1.0, bad_format=-2.0)
    assert r([GOOD, R.o1_target(THINK, '**Answer:** 9'), 'x'], ['3'] * 3) == [2.0, -1.0, -2.0]

def test_bad_configs():
    with pytest.raises(ConfigError, match='no PPOTrainer'): R.trl_args('ppo', '/tmp/x')
    with pytest.raises(ConfigError, match='unknown SFT variant'): R.sft_examples([], 'long CoT')
    a = R.trl_args('grpo', '/tmp/x', max_steps=1)
    assert a.beta == 0.03 and a.use_cpu == (not torch.cuda.is_available()) and a.bf16 == (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    with pytest.raises(ConfigError, match='beta must be > 0'): R.train_rl('unused', [{'prompt': 'q', 'solution': '1'}], R.trl_args('rloo', '/tmp/x', beta=0.0))
    with pytest.raises(ConfigError, match='GRPOConfig or an RLOOConfig'): R.train_rl('unused', [], R.trl_args('sft', '/tmp/x'))
    with pytest.raises(DataError, match='empty training set'): R.train_sft('unused', [], R.trl_args('sft', '/tmp/x'))

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    from medbook.llm import build_small_lm
    return R.load_rl_data('tiny', 0), build_small_lm('tiny', 0)

def test_rl_resumes_from_checkpoint(tiny, tmp_path):
    data, base = tiny
    rows = R.rl_examples(data['rl_problems'])
    kw = dict(per_device_train_batch_size=4, num_generations=2, max_completion_length=8, learning_rate=1e-4, seed=0, save_steps=1)
    first = R.train_rl(base, rows, R.trl_args('grpo', tmp_path/'g', max_steps=1, **kw))
    assert first.state.global_step == 1 and (tmp_path/'g'/'checkpoint-1').is_dir()
    again = R.train_rl(base, rows, R.trl_args('grpo', tmp_path/'g', max_steps=2, **kw))    # picks up checkpoint-1
    assert again.state.global_step == 2
    assert len(R.reward_curve(again)) == 2                                                # the log history came back with it

def test_torchrun_two_ranks_agree(tiny, tmp_path):
    (r0, r1), (a, b) = run_two_ranks('_rl_ddp_script.py', tmp_path)
    assert r0['world'] == r1['world'] == 2 and r0['seen_world'] == 2
    assert r0['sft_steps'] == r1['sft_steps'] == 2 and r0['rl_steps'] == r1['rl_steps'] == 2
    assert r0['rewards'] == r1['rewards']                                      # rewards are gathered across ranks before logging
    assert a.keys() == b.keys()
    for k in a: assert torch.equal(a[k], b[k]), f'{k} differs between the ranks'
