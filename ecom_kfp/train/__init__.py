"""Training stage: image + title classifier with one softmax head per taxonomy level.

``run(TrainConfig) -> TrainReport`` trains in this process, or under ``horovodrun`` when
``num_processes > 1`` (Horovod data parallelism: each rank reads its own shards, gradients are
averaged with a grouped allreduce, rank 0 writes everything). Output: :class:`ModelLayout`.

Modules: :mod:`.config` (the typed config), :mod:`.data` (dataset layout, manifest, input
pipeline), :mod:`.text` (in-graph SentencePiece tokenizer, Doc2Vec piece vectors),
:mod:`.backbones` (image backbone registry), :mod:`.model` (the classifier and its Horovod
``train_step``), :mod:`.distributed` (Horovod or a single process behind one interface),
:mod:`.callbacks`, :mod:`.tracking` (MLflow), :mod:`.export` (serving SavedModel),
:mod:`.launch` (horovodrun), :mod:`.worker` (per-rank entry point), :mod:`.run`, :mod:`.cli`,
:mod:`.mpijob` (multi-node MPIJob manifest and submission).
"""
