"""The small LM: resumable pretraining, the saved directory, bad inputs."""
import json
import pytest, torch

from medbook.core import DataError, ConfigError
from medbook.llm import (pretrain_small_lm, eval_windows, lm_perplexity, unigram_perplexity, pack_documents, HFClient,
                         SIMPLE_CHAT_TEMPLATE, with_bos)

@pytest.fixture(scope='module')
def tok():
    from medbook.tokenizers import load_bpe_tokenizer
    return load_bpe_tokenizer('tiny')

@pytest.fixture(scope='module')
def stream(tok):
    docs = ['FINDINGS: The heart is normal in size. The lungs are clear.\nIMPRESSION: No acute cardiopulmonary abnormality.',
            'J45.909 Unspecified asthma, uncomplicated\nIncludes: Asthma NOS'] * 40
    return pack_documents(tok, docs)

def test_interrupted_pretraining_resumes_exactly(tok, stream, tmp_path):
    ref, ref_losses = pretrain_small_lm(tok, stream, 'tiny', seed=3, device='cpu', steps=12)
    pretrain_small_lm(tok, stream, 'tiny', seed=3, device='cpu', steps=12, ckpt_dir=tmp_path, stop_after=5)
    res, losses = pretrain_small_lm(tok, stream, 'tiny', seed=3, device='cpu', steps=12, ckpt_dir=tmp_path)
    assert losses == ref_losses and len(losses) == 12
    for a, b in zip(ref.state_dict().values(), res.state_dict().values()): assert torch.equal(a, b)

def test_saved_directory_loads_everywhere(tok, stream, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model, _ = pretrain_small_lm(tok, stream, 'tiny', seed=0, device='cpu', steps=3)
    t = AutoTokenizer.from_pretrained(tok.name_or_path); t.chat_template = SIMPLE_CHAT_TEMPLATE; with_bos(t)
    model.save_pretrained(tmp_path); t.save_pretrained(tmp_path)
    m2, t2 = AutoModelForCausalLM.from_pretrained(tmp_path), AutoTokenizer.from_pretrained(tmp_path)
    assert t2.chat_template == SIMPLE_CHAT_TEMPLATE and t2('The heart')['input_ids'][0] == t2.bos_token_id
    w = eval_windows(stream, 32, 4)
    assert lm_perplexity(m2, w) == pytest.approx(lm_perplexity(model, w))
    c = HFClient(tmp_path, device='cpu')
    assert len(c.chat([[{'role': 'user', 'content': 'Is the heart enlarged?'}]], max_new_tokens=4)) == 1

def test_bad_inputs(tok):
    with pytest.raises(DataError, match='shorter than one window'):
        pretrain_small_lm(tok, torch.arange(10, dtype=torch.int32), 'tiny', device='cpu', steps=2)
    with pytest.raises(DataError, match='no documents'): pack_documents(tok, [])
    with pytest.raises(DataError, match='no window'): eval_windows(torch.arange(5), 32)
    with pytest.raises(ConfigError, match='unknown scale'): pretrain_small_lm(tok, torch.arange(1000), 'huge')

def test_unigram_uniform_is_vocab_size():
    w = torch.randint(0, 50, (3, 8))
    assert unigram_perplexity(torch.arange(50), w, 50) == pytest.approx(50)
