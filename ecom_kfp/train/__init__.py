"""Training stage: image + title classifier with one softmax head per taxonomy level.

``run(TrainConfig) -> TrainReport`` trains in this process, or under ``horovodrun`` /
an MPIJob (``--launcher``, ``--np``: Horovod data parallelism, each rank reads its own shards,
gradients are averaged with a grouped allreduce, rank 0 writes everything). Output:
:class:`~ecom_kfp.contracts.layouts.ModelLayout`.

Modules: :mod:`.config` (the settings), :mod:`.presets` (cpu-small, gpu), :mod:`.stage` (``run``),
:mod:`.trainer` (one rank: load, build or resume, fit, export), :mod:`.report`, :mod:`.data`
(dataset layout, manifest, input pipeline), :mod:`.text` (in-graph SentencePiece tokenizer,
Doc2Vec piece vectors), :mod:`.backbones`, :mod:`.model` (the classifier and its Horovod
``train_step``), :mod:`.augment` (batched augmentation in the train step), :mod:`.precision`
(dtype policy by hardware), :mod:`.distributed` (Horovod or a single process behind one
interface), :mod:`.callbacks`, :mod:`.tracking` (MLflow), :mod:`.export` (serving SavedModel),
:mod:`.launch` (horovodrun), :mod:`.mpijob` (multi-node MPIJob), :mod:`.worker` (per-rank entry
point), :mod:`.cli`.
"""

from ecom_kfp.train.config import TrainConfig
from ecom_kfp.train.report import TrainReport
from ecom_kfp.train.stage import run

__all__ = ["TrainConfig", "TrainReport", "run"]
