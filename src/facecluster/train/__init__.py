"""``facecluster train``: triplet loss with online semi-hard mining (FaceNet, section 3).

- ``losses``: the triplet loss and the miner;
- ``sampler``: P x K batches and the validation split;
- ``loop``: the training loop, checkpoints and ``--resume``;
- ``head``: ``--mode head``, a projection over a frozen encoder's cached embeddings;
- ``images``: ``--mode finetune|scratch``, InceptionResnetV1 on face chips.

Nothing here imports torch at module level; it is imported inside the functions.
"""
