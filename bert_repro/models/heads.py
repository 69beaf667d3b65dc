"""Heads on mindnlp's BERT: pre-training (MLM, NSP) and the fine-tuning variants of Table 5.

Module names follow Hugging Face's BertForPreTraining (``bert.*``, ``cls.predictions.*``,
``cls.seq_relationship.*``), so a pre-training checkpoint loads into any Hugging Face BERT class
(``BertForSequenceClassification.from_pretrained(<run dir>/checkpoint)``). The left-to-right
objective is a causal mask, stored as the standard ``is_decoder: true`` in config.json: every
BERT class built from that checkpoint keeps the left-only constraint, as the paper does.

Importing this module loads the framework (the classes subclass mindnlp's, which need mindtorch
to answer ``import torch``); ``backend.configure_hub`` must have run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from bert_repro import backend

torch = backend.load_framework()

from mindnlp.transformers import BertModel  # noqa: E402
from transformers.modeling_outputs import ModelOutput, SequenceClassifierOutput  # noqa: E402
from transformers.models.bert.modeling_bert import (  # noqa: E402
    BertOnlyMLMHead,
    BertPreTrainedModel,
    BertPreTrainingHeads,
)

nn, F = torch.nn, torch.nn.functional


@dataclass
class PretrainingOutput(ModelOutput):
    """Loss for the loop, plus what the held-out evaluation sums over predicted tokens."""

    loss: Any = None
    mlm_loss: Any = None
    nsp_loss: Any = None
    token_losses: Any = None  # [batch, predictions] cross-entropy at every predicted position
    token_predictions: Any = None  # [batch, predictions] argmax ids (eval mode only)
    nsp_logits: Any = None


def _take(values: Any, index: Any) -> Any:
    """``values[b, index[b, p]]`` for [batch, length, width] values and [batch, p] indices."""
    expanded = index.unsqueeze(-1).expand(-1, -1, values.shape[-1])
    return torch.gather(values, 1, expanded)


def _live_lstm(lstm: Any) -> Any:
    """A one-layer LSTM that runs on its current parameters.

    mindtorch's LSTM computes with the parameter objects it listed at construction, but
    ``from_pretrained`` replaces a module's parameters: the lists then point at stale copies and
    the real weights get zero gradient. Re-point them before each call.
    """
    for kind, name in (("w_ih", "weight"), ("w_hh", "weight"), ("b_ih", "bias"), ("b_hh", "bias")):
        setattr(lstm, f"{kind}_list", [getattr(lstm, f"{name}_{kind[2:]}_l0")])
    return lstm


class BertPretrainingModel(BertPreTrainedModel):
    """BERT with one objective's heads (``config.bert_repro_objective``).

    The MLM head (transform + decoder tied to the word embeddings) runs only on the hidden states
    gathered at the predicted positions: 20 of 128 for MLM, which on CPU was 2-3x faster than
    scoring every position (stack findings). ``mlm`` and ``ltr`` have no NSP head and no pooler.
    """

    _tied_weights_keys: ClassVar[list[str]] = [
        "cls.predictions.decoder.bias",
        "cls.predictions.decoder.weight",
    ]

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.nsp = config.bert_repro_objective == "mlm_nsp"
        self.bert = BertModel(config, add_pooling_layer=self.nsp)
        self.cls = BertPreTrainingHeads(config) if self.nsp else BertOnlyMLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> Any:
        return self.cls.predictions.decoder

    def set_output_embeddings(self, embeddings: Any) -> None:
        self.cls.predictions.decoder = embeddings
        self.cls.predictions.bias = embeddings.bias

    def forward(
        self,
        input_ids: Any,
        attention_mask: Any,
        token_type_ids: Any,
        masked_lm_positions: Any,
        masked_lm_ids: Any,
        masked_lm_weights: Any,
        next_sentence_label: Any = None,
        masked_lm_count_per_row: Any = None,
        position_ids: Any = None,
    ) -> PretrainingOutput:
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
        )
        logits = self.cls.predictions(_take(outputs.last_hidden_state, masked_lm_positions))
        batch, predictions, vocab = logits.shape
        token_losses = backend.token_cross_entropy(
            logits.reshape(-1, vocab), masked_lm_ids.reshape(-1)
        ).reshape(batch, predictions)
        # Google's run_pretraining.py: mean over real predictions, padding slots weigh 0. Over
        # the whole batch's predictions when these rows are a slice of it (model_batch).
        count = masked_lm_weights if masked_lm_count_per_row is None else masked_lm_count_per_row
        mlm_loss = (token_losses * masked_lm_weights).sum() / (count.sum() + 1e-5)
        loss, nsp_loss, nsp_logits = mlm_loss, None, None
        if self.nsp:
            nsp_logits = self.cls.seq_relationship(outputs.pooler_output)
            if next_sentence_label is not None:
                nsp_loss = F.cross_entropy(nsp_logits, next_sentence_label)
                loss = mlm_loss + nsp_loss
        return PretrainingOutput(
            loss=loss,
            mlm_loss=mlm_loss,
            nsp_loss=nsp_loss,
            token_losses=token_losses,
            token_predictions=None if self.training else logits.argmax(-1),
            nsp_logits=nsp_logits,
        )


class BertClassifier(BertPreTrainedModel):
    """BertForSequenceClassification's modules and loss, plus the two things Table 5 needs.

    - A causal encoder (pre-trained ``ltr``) is pooled at its last token: under a left-only mask
      [CLS] sees only itself, so, as in OpenAI GPT, the last token is the one that read the input.
    - ``config.bert_repro_head == "bilstm"``: a randomly initialised BiLSTM over the encoder
      outputs ("+ BiLSTM"); its forward state at the last token and its backward state at the
      first (each has read the whole sequence) feed the classifier. The backward LSTM reads each
      sequence reversed within its own length, so padding never enters either direction.
    """

    def __init__(self, config: Any, bert_repro_head: str | None = None) -> None:
        # from_pretrained hands a kwarg the checkpoint's config lacks to __init__: keep it there
        if bert_repro_head is not None:
            config.bert_repro_head = bert_repro_head
        super().__init__(config)
        self.num_labels = config.num_labels
        self.head = getattr(config, "bert_repro_head", "linear")
        self.bert = BertModel(config)
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        width = config.hidden_size
        if self.head == "bilstm":
            self.lstm_forward = nn.LSTM(width, width, batch_first=True)
            self.lstm_backward = nn.LSTM(width, width, batch_first=True)
            width *= 2
        self.classifier = nn.Linear(width, config.num_labels)
        self.post_init()

    def _init_weights(self, module: Any) -> None:
        super()._init_weights(module)
        if isinstance(module, nn.LSTM):  # BERT's initialiser knows no LSTM
            for name, param in module.named_parameters():
                if "bias" in name:
                    param.data.zero_()
                else:
                    param.data.normal_(mean=0.0, std=self.config.initializer_range)

    def forward(
        self,
        input_ids: Any,
        attention_mask: Any,
        token_type_ids: Any = None,
        labels: Any = None,
    ) -> SequenceClassifierOutput:
        outputs = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        hidden = outputs.last_hidden_state
        lengths = attention_mask.sum(1)
        last = (lengths - 1).unsqueeze(1)  # [batch, 1]
        if self.head == "bilstm":
            steps = torch.arange(hidden.shape[1]).unsqueeze(0)
            within = steps < lengths.unsqueeze(1)
            backward_order = torch.where(within, lengths.unsqueeze(1) - 1 - steps, steps)
            forward_states, _ = _live_lstm(self.lstm_forward)(hidden)
            backward_states, _ = _live_lstm(self.lstm_backward)(_take(hidden, backward_order))
            pooled = torch.cat(
                [_take(forward_states, last), _take(backward_states, last)], dim=-1
            ).squeeze(1)
        elif self.config.is_decoder:
            pooled = self.bert.pooler(_take(hidden, last))
        else:
            pooled = outputs.pooler_output
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            if self.num_labels == 1:
                loss = F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
            else:
                loss = F.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)
