"""Stages 3 and 4: the BiLSTM sequence model and the attention decoder (CTC is a Linear)."""

from __future__ import annotations

import torch
from torch import nn


class BidirectionalLSTM(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(hidden_size * 2, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, input_size) -> (B, T, output_size)."""
        if x.is_cuda:
            self.rnn.flatten_parameters()  # cuDNN wants contiguous weights (after .to(device))
        recurrent, _ = self.rnn(x)
        return self.linear(recurrent)


class AttentionCell(nn.Module):
    """Bahdanau attention over the encoder steps followed by one LSTM step."""

    def __init__(self, input_size: int, hidden_size: int, num_embeddings: int) -> None:
        super().__init__()
        self.i2h = nn.Linear(input_size, hidden_size, bias=False)
        self.h2h = nn.Linear(hidden_size, hidden_size)
        self.score = nn.Linear(hidden_size, 1, bias=False)
        self.rnn = nn.LSTMCell(input_size + num_embeddings, hidden_size)

    def forward(
        self,
        state: tuple[torch.Tensor, torch.Tensor],
        encoded: torch.Tensor,
        encoded_proj: torch.Tensor,
        prev_onehot: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        query = self.h2h(state[0]).unsqueeze(1)  # B x 1 x hidden
        energy = self.score(torch.tanh(encoded_proj + query))  # B x T x 1
        alpha = torch.softmax(energy, dim=1)
        context = torch.bmm(alpha.transpose(1, 2), encoded).squeeze(1)  # B x input_size
        return self.rnn(torch.cat([context, prev_onehot], dim=1), state)


class Attention(nn.Module):
    """Attention decoder. Class 0 is [GO] (the first input), class 1 is [s] (end of sequence)."""

    def __init__(self, input_size: int, hidden_size: int, num_classes: int) -> None:
        super().__init__()
        self.attention_cell = AttentionCell(input_size, hidden_size, num_classes)
        self.hidden_size = hidden_size
        self.num_classes = num_classes
        self.generator = nn.Linear(hidden_size, num_classes)

    def forward(
        self, encoded: torch.Tensor, text: torch.Tensor | None = None, max_length: int = 25
    ) -> torch.Tensor:
        """Logits (B, max_length + 1, num_classes).

        With ``text`` (B x max_length + 1, teacher forcing, text[:, 0] = [GO]) each step is fed the
        true previous character; without it decoding is greedy, feeding back each step's arg-max.
        """
        batch, device, dtype = encoded.size(0), encoded.device, encoded.dtype
        steps = max_length + 1
        state = (
            torch.zeros(batch, self.hidden_size, device=device, dtype=dtype),
            torch.zeros(batch, self.hidden_size, device=device, dtype=dtype),
        )
        encoded_proj = self.attention_cell.i2h(encoded)  # constant over steps: compute once
        prev = torch.zeros(batch, dtype=torch.long, device=device)  # [GO]
        outputs = []
        for step in range(steps):
            if text is not None:
                prev = text[:, step]
            onehot = torch.zeros(batch, self.num_classes, device=device, dtype=dtype)
            onehot.scatter_(1, prev.unsqueeze(1), 1.0)
            state = self.attention_cell(state, encoded, encoded_proj, onehot)
            logits = self.generator(state[0])
            outputs.append(logits)
            if text is None:
                prev = logits.argmax(dim=1)
        return torch.stack(outputs, dim=1)
