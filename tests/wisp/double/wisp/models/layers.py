"""``wisp.models.layers.get_layer_class`` (test double, same normalisations)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class _Normalized(nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()
        self.linear = nn.Linear(*args, **kwargs)


class FrobeniusLinear(_Normalized):
    def forward(self, x):
        w = self.linear.weight
        return F.linear(x, w / torch.sqrt((torch.abs(w)**2).sum()), self.linear.bias)


class L_1_Linear(_Normalized):
    def forward(self, x):
        w = self.linear.weight
        col = torch.sum(torch.abs(w), dim=0)
        col = torch.min(torch.stack([1.0 / col, torch.ones_like(col)], dim=0), dim=0)[0]
        return F.linear(x, w * col[None, :], self.linear.bias)


class L_inf_Linear(_Normalized):
    def forward(self, x):
        w = self.linear.weight
        row = torch.sum(torch.abs(w), axis=1)
        row = torch.min(torch.stack([1.0 / row, torch.ones_like(row)], dim=0), dim=0)[0]
        return F.linear(x, w * row[:, None], self.linear.bias)


def spectral_norm_(*args, **kwargs):
    return nn.utils.spectral_norm(nn.Linear(*args, **kwargs))


def get_layer_class(layer_type):
    return {"none": nn.Linear, "linear": nn.Linear, "spectral_norm": spectral_norm_,
            "frobenius_norm": FrobeniusLinear, "l_1_norm": L_1_Linear,
            "l_inf_norm": L_inf_Linear}[layer_type]
