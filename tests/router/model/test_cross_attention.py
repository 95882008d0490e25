import pytest
import torch

from router.model.cross_attention import CrossAttentionRouter, count_parameters


@pytest.mark.parametrize("variant", ["prompt_queries", "model_queries"])
def test_forward_shapes(variant):
    torch.manual_seed(0)
    net = CrossAttentionRouter(12, 4, hidden_dim=8, variant=variant).eval()
    x = torch.randn(5, 12)
    tokens = torch.randn(5, 7, 12) if variant == "model_queries" else None
    q, c, attn = net(x, tokens, return_attention=True)
    assert q.shape == (5, 4) and c.shape == (5, 4)
    assert attn.shape == ((5, 4) if variant == "prompt_queries" else (5, 4, 8))
    assert torch.allclose(attn.sum(-1), torch.ones(attn.shape[:-1]))
    assert count_parameters(net) > 0


def test_masked_tokens_are_ignored():
    torch.manual_seed(0)
    net = CrossAttentionRouter(6, 3, hidden_dim=8, variant="model_queries").eval()
    x = torch.randn(2, 6)
    tokens = torch.randn(2, 5, 6)
    mask = torch.tensor([[True, True, False, False, False], [True, True, True, True, True]])
    q1, c1, attn = net(x, tokens, mask, return_attention=True)
    garbage = tokens.clone()
    garbage[0, 2:] = 1e3  # padded positions of prompt 0
    q2, c2 = net(x, garbage, mask)
    assert torch.allclose(q1, q2) and torch.allclose(c1, c2)
    assert (attn[0, :, 3:] == 0).all()  # +1 offset: position 0 is the sentence embedding
    # A prompt with every token masked attends to its sentence embedding only: as if no tokens.
    q3, _ = net(x, tokens, torch.zeros(2, 5, dtype=torch.bool))
    q4, _ = net(x)
    assert torch.allclose(q3, q4)


def test_prompt_queries_ignores_tokens_and_checks_variant():
    with pytest.raises(ValueError, match="unknown variant"):
        CrossAttentionRouter(4, 2, variant="sideways")
    with pytest.raises(ValueError, match="model_init"):
        CrossAttentionRouter(4, 2, model_init=torch.zeros(3, 4))
