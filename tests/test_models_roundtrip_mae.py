"Every model of notebooks 05 and 07 round-trips through `save_pretrained` / `from_pretrained`: identical config, weights and outputs."
import torch, pytest
from medbook.core import DataError
from medbook.models.mae import (MAE3D, MAE_CONFIGS, MultiModalMAE, ViT3D, ViT3DConfig, mae_checkpoint_dir, mask_report_words,
                                tokenize_reports)
from medbook.models.simcrop import SimCroP, pretrain_checkpoint_dir, simcrop_config
from medbook.tokenizers import minilm_tokenizer

VIT = ViT3DConfig(img_size=(16, 32, 32), hidden_size=24, num_layers=1, num_heads=4)
REPORTS = ['There is a 9-mm nodule in the left lower lobe. No pleural effusion.', 'Moderate right pleural effusion. Normal heart size.']

@pytest.fixture(scope='module')
def x(): return torch.rand(2, 1, 16, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1

def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa: assert torch.equal(sa[k], sb[k]), k

def _g(): return torch.Generator().manual_seed(1)   # the masking is drawn from it: fixed, the outputs must match

def test_vit3d(tmp_path, x):
    torch.manual_seed(0); m = ViT3D(VIT).eval()
    m.save_pretrained(tmp_path/'vit'); back = ViT3D.from_pretrained(tmp_path/'vit').eval()
    _same_weights(m, back)
    with torch.no_grad(): assert torch.equal(back(x), m(x))

def test_mae3d(tmp_path, x):
    torch.manual_seed(0); m = MAE3D(VIT, decoder_hidden=24, decoder_layers=1, decoder_heads=4, mask_ratio=0.5, norm_pix=False).eval()
    back = MAE3D.from_pretrained(m.save_pretrained(tmp_path/'mae'))
    assert back.config.to_dict() == m.config.to_dict() and (back.mask_ratio, back.norm_pix) == (0.5, False)
    _same_weights(m, back)
    with torch.no_grad(): a, b = m(x, generator=_g()), back(x, generator=_g())
    assert torch.equal(a['mask'], b['mask']) and torch.equal(a['pred'], b['pred']) and torch.equal(a['loss'], b['loss'])
    with pytest.raises(DataError, match='config.json not found'): MAE3D.from_pretrained(tmp_path/'nothing')

def test_multimodal_mae(tmp_path, x):
    tok = minilm_tokenizer()
    torch.manual_seed(0); m = MultiModalMAE(MAE3D(VIT, 24, 1, 4), tok.vocab_size, text_hidden=24, text_layers=1, text_heads=4, max_len=24).eval()
    back = MultiModalMAE.from_pretrained(m.save_pretrained(tmp_path/'mm'))
    assert back.config.to_dict() == m.config.to_dict()
    _same_weights(m, back)
    assert back.text.head.weight is back.text.tok_embed.weight          # the tie survives the round trip
    t = tokenize_reports(REPORTS, tok, max_len=24)
    ids, labels = mask_report_words(t, tok.mask_token_id, generator=_g())
    with torch.no_grad(): a, b = (mod(x, ids, t['attention_mask'], labels, generator=_g()) for mod in (m, back))
    assert torch.equal(a['loss'], b['loss']) and torch.equal(a['mlm_loss'], b['mlm_loss'])

def test_simcrop(tmp_path, x):
    cfg = simcrop_config('tiny', 'SimCroP', encoder=dict(img_size=(16, 32, 32), hidden_size=24, num_layers=1, num_heads=4),
                         decoder=dict(decoder_hidden=24, decoder_layers=1, decoder_heads=4), embed_dim=24,
                         report=dict(hidden=24, layers=1, heads=4, max_len=48), k=1)
    torch.manual_seed(0); m = SimCroP(cfg)
    m(x, REPORTS, generator=_g())['loss'].backward()                    # a training step's forward: BatchNorm statistics move
    back = SimCroP.from_pretrained(m.save_pretrained(tmp_path/'sc'))
    assert back.config.to_dict() == m.config.to_dict() and back.terms == m.terms
    _same_weights(m, back)
    m.eval()
    with torch.no_grad():
        a, b = m(x, REPORTS, generator=_g()), back(x, REPORTS, generator=_g())
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert torch.equal(m.embed_image(x), back.embed_image(x)) and torch.equal(m.embed_text(REPORTS), back.embed_text(REPORTS))

def test_initial_weights_and_checkpoint_names_are_stable():
    # the `small` tables were measured from these initial weights and are cached under these folder names
    assert mae_checkpoint_dir('mae', 'small', 1).name == 'mae-small-4bef01d400-seed1'
    assert mae_checkpoint_dir('mae-mlm', 'tiny', 1).name == 'mae-mlm-tiny-b2d7e31a67-seed1'
    assert pretrain_checkpoint_dir(simcrop_config('small', 'SimCroP'), 0).name == 'simcrop-simcrop-small-0132e39d04-seed0'
    assert pretrain_checkpoint_dir(simcrop_config('small', 'global CLIP'), 0).name == 'simcrop-global-clip-small-0b0ebe63a8-seed0'
    assert pretrain_checkpoint_dir(simcrop_config('tiny', 'random init'), 0).name == 'simcrop-random-init-tiny-e6f0d9acd7-seed0'
    c = MAE_CONFIGS['tiny']
    torch.manual_seed(1); m = MAE3D(ViT3DConfig(**c.encoder), **c.decoder)
    torch.manual_seed(1); m2 = MAE3D(ViT3D(ViT3DConfig(**c.encoder)), **c.decoder)   # from an encoder or from its config: the same init
    _same_weights(m, m2)
