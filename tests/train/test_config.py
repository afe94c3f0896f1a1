import math

import pytest

from torch_geometric_remul.train import TrainConfig, resume_config


def test_resolved_fills_defaults_and_canonical_names():
    config = TrainConfig(group='so3').resolved()
    assert config.group == 'SO3' and config.data_root == 'data'
    assert TrainConfig(task='mocap').resolved().group == 'SO2'
    assert TrainConfig(task='md17', source='standin').resolved().source == \
        'standin'


@pytest.mark.parametrize('field,value,message', [
    ('lr', math.nan, "'lr' must be a finite number > 0"),
    ('lr', math.inf, "'lr' must be a finite number > 0"),
    ('weight_decay', -1.0, "'weight_decay' must be a finite number >= 0"),
    ('alpha', -1.0, "'alpha' must be a finite number >= 0"),
    ('beta', math.nan, "'beta' must be a finite number >= 0"),
    ('epsilon', 0.0, "'epsilon' must be a finite number > 0"),
    ('epsilon', math.inf, "'epsilon' must be a finite number > 0"),
    ('group', 'XYZ', "'group' must be one of SO3"),
    ('mode', 'both', "'mode' must be one of target, consistency"),
    ('source', 'bogus', "'source' is not an option of the nbody task"),
    ('num_layers', 0, "'num_layers' must be >= 1"),
])
def test_resolved_rejects(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value}).resolved()


@pytest.mark.parametrize('field,value', [('lr', 'fast'), ('epochs', 2.5),
                                         ('epochs', True), ('fused', 1),
                                         ('task', 3), ('alpha', None)])
def test_resolved_rejects_wrong_types(field, value):
    # what a hand-edited config.json can hold
    with pytest.raises(TypeError, match=f"'{field}' must be"):
        TrainConfig(**{field: value}).resolved()


def test_resume_config_applies_epochs_and_data_root():
    saved = TrainConfig(epochs=5, data_root='old').resolved()
    config, applied = resume_config(saved, {'epochs': 8, 'data_root': 'new',
                                            'lr': 5e-4, 'group': 'so3',
                                            'model': 'GNN'})
    assert (config.epochs, config.data_root) == (8, 'new')
    assert applied == ['--epochs 8 (was 5)', '--data-root new (was old)']
    assert resume_config(saved, {})[1] == []
    assert saved.epochs == 5  # not modified


def test_resume_config_names_every_conflict():
    saved = TrainConfig(epochs=5).resolved()
    with pytest.raises(ValueError) as info:
        resume_config(saved, {'lr': 5.0, 'model': 'transformer',
                              'beta': 100.0, 'fused': True, 'seed': 0})
    message = str(info.value)
    for part in ('--lr 5.0', '--model transformer', '--beta 100.0',
                 '--fused True'):
        assert part in message
    assert '--seed' not in message  # the same value as the run's
    with pytest.raises(ValueError, match='fewer than the 3 epochs'):
        resume_config(saved, {'epochs': 2}, done_epochs=3)
