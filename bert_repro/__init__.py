"""bert-repro: a reproduction of BERT (Devlin et al., 2019) on MindSpore + MindNLP."""
