import dataclasses
import json
import math
import sys

import pytest
import torch

from tests.train._helpers import one_line_error
from torch_geometric_remul.cli import main
from torch_geometric_remul.train import (
    TASK_DEFAULTS,
    TASKS,
    ConfigFileError,
    TrainConfig,
    defaults,
    load_config,
    read_config_file,
    resume_config,
)
from torch_geometric_remul.train.config import MAX_SEED, derive_seed


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
    ('clip_grad_norm', 0.0, "'clip_grad_norm' must be a finite number > 0"),
    ('clip_grad_norm', math.inf, "'clip_grad_norm' must be a finite "
     "number > 0"),
    ('alpha', -1.0, "'alpha' must be a finite number >= 0"),
    ('beta', math.nan, "'beta' must be a finite number >= 0"),
    ('epsilon', 0.0, "'epsilon' must be a finite number > 0"),
    ('epsilon', math.inf, "'epsilon' must be a finite number > 0"),
    ('group', 'XYZ', "'group' must be one of SO3"),
    ('mode', 'both', "'mode' must be one of target, consistency"),
    ('source', 'bogus', "'source' is not an option of the nbody task"),
    ('num_layers', 0, "'num_layers' must be >= 1"),
    ('num_samples', 0, "'num_samples' must be >= 1"),
    ('val_every', 0, "'val_every' must be >= 1"),
])
def test_resolved_rejects(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value}).resolved()


@pytest.mark.parametrize('field,value', [('lr', 'fast'), ('epochs', 2.5),
                                         ('clip_grad_norm', '1'),
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


# One source of defaults ####################################################


def test_defaults_are_the_resolved_values_of_every_task():
    for task in TASKS:
        resolved = TrainConfig(task=task).resolved()
        stated = defaults(task)
        for key, value in dataclasses.asdict(resolved).items():
            if key in ('model', 'group'):  # canonical spelling
                value = value.lower()
                stated[key] = stated[key].lower()
            assert stated[key] == value, (task, key)
        for key, value in TASK_DEFAULTS[task].items():
            assert getattr(resolved, key) == value
    # what every task shares is what the dataclass says
    assert defaults()['beta'] == TrainConfig().beta
    assert defaults()['epochs'] is None  # per task


def test_help_shows_the_per_task_defaults(capsys):
    with pytest.raises(SystemExit):
        main(['train', '--help'])
    out = capsys.readouterr().out
    table = out.split('per-task defaults')[1]
    for task, values in TASK_DEFAULTS.items():
        row = next(line.split() for line in table.splitlines()
                   if line.split()[:1] == [task])
        assert row[1:4] == [str(values['epochs']),
                            str(values['batch_size']), f"{values['lr']:g}"]
        assert values['group'] in row
    flat = ' '.join(out.split())
    assert '--beta BETA weight of the equivariance loss, a finite number ' \
        '>= 0 (default: 1)' in flat
    assert '--lr LR learning rate of Adam (default: per task' in flat


# Configuration files ########################################################


def _write(path, values):
    path.write_text(json.dumps(values))
    return str(path)


def test_load_config_file_with_overrides(tmp_path):
    path = _write(tmp_path / 'c.json', {'task': 'gravity', 'beta': 3.0,
                                        'run_dir': str(tmp_path / 'x')})
    config = load_config(path, {'beta': 5.0, 'lr': None, 'epochs': 2})
    assert (config.task, config.beta, config.epochs) == ('gravity', 5.0, 2)
    assert config.lr == TASK_DEFAULTS['gravity']['lr']  # not in the file
    assert config.run_dir == str(tmp_path / 'x')  # a hand-written run_dir
    # a run's own config.json never points the new run at that run
    run = tmp_path / 'run'
    run.mkdir()
    own = _write(run / 'config.json', {'run_dir': str(run)})
    assert load_config(own).run_dir is None
    assert load_config(own, {'run_dir': 'elsewhere'}).run_dir == 'elsewhere'


@pytest.mark.parametrize('text,message', [
    ('', 'is not a valid configuration file (empty)'),
    ('{"task": "nbody",', 'not valid JSON'),
    ('[1, 2]', 'holds a JSON list, not an object'),
    ('{"colour": "blue"}', "unknown config field(s): ['colour']"),
    ('{"lr": "fast"}', "'lr' must be a number"),
    ('{"task": "qm9"}', "'task' must be one of"),
])
def test_config_file_errors_name_the_file(tmp_path, text, message):
    path = tmp_path / 'c.json'
    path.write_text(text)
    with pytest.raises((TypeError, ValueError)) as info:
        load_config(str(path))
    assert str(path) in str(info.value) and message in str(info.value)
    with pytest.raises(FileNotFoundError, match='nope.json not found'):
        read_config_file(str(tmp_path / 'nope.json'))


def test_yaml_config_file(tmp_path, monkeypatch):
    path = tmp_path / 'c.yaml'
    path.write_text('task: gravity\nbeta: 2.5\n')
    try:
        import yaml  # noqa: F401
        assert load_config(str(path)).beta == 2.5
    except ImportError:
        pass
    monkeypatch.setitem(sys.modules, 'yaml', None)  # PyYAML missing
    with pytest.raises(ConfigFileError, match='needs PyYAML'):
        read_config_file(str(path))


def test_rerun_from_config_json_is_bit_exact(finished, tmp_path, capsys):
    """A finished run's config.json, run again into a new directory,
    reproduces its metrics and weights bit for bit."""
    again = tmp_path / 'again'
    args = ['train', '--no-progress', '--config',
            str(finished / 'config.json'), '--run-dir', str(again)]
    assert main(args) == 0
    capsys.readouterr()
    first = json.loads((finished / 'metrics.json').read_text())
    second = json.loads((again / 'metrics.json').read_text())
    assert len(first) == len(second) == 1
    for a, b in zip(first, second):
        a.pop('epoch_seconds'), b.pop('epoch_seconds')
        assert a == b
    test = [json.loads((run / 'results.json').read_text())['test']
            for run in (finished, again)]
    for key in ('mse', 'E', 'E_prime', 'E_prime_rel'):
        assert test[0][key] == test[1][key], key
    weights = [torch.load(run / 'checkpoint.pt', weights_only=True)['model']
               for run in (finished, again)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    saved = json.loads((again / 'config.json').read_text())
    assert saved['run_dir'] == str(again)
    # the original run is untouched, and --config does not resume
    assert main(args[:-2] + ['--resume', str(finished)]) == 1
    assert '--config cannot be combined with --resume' in \
        capsys.readouterr().err


def test_config_file_errors_are_one_line(tmp_path, capsys):
    path = tmp_path / 'c.json'
    path.write_text('{"beta": -1}')
    assert main(['train', '--config', str(path), '--no-progress']) == 1
    line = one_line_error(capsys.readouterr().err)
    assert str(path) in line and "'beta' must be a finite number >= 0" in line
    assert main(['train', '--config', str(tmp_path / 'nope.json')]) == 1
    assert 'nope.json not found' in one_line_error(capsys.readouterr().err)


def test_num_samples_needs_a_loss_that_draws_group_elements():
    with pytest.raises(ValueError, match="'num_samples' must be 1 with "
                       "loss 'plain'"):
        TrainConfig(loss='plain', num_samples=2).resolved()
    assert TrainConfig(loss='augment', num_samples=2).resolved() \
        .num_samples == 2


@pytest.mark.parametrize('seed', [-1, MAX_SEED + 1, 2**64])
def test_seed_range_is_checked(seed):
    with pytest.raises(ValueError, match=r"'seed' must be an integer from 0 "
                       r"to 2\*\*63 - 1"):
        TrainConfig(seed=seed).resolved()


@pytest.mark.parametrize('command', [['train'], ['evaluate', 'RUN'],
                                     ['check', 'RUN']])
@pytest.mark.parametrize('seed', ['-1', str(MAX_SEED + 1), '1e3'])
def test_every_command_checks_the_seed_range(command, seed, capsys):
    # the same check for every command, before any file is read
    with pytest.raises(SystemExit) as info:
        main(command + ['--seed', seed])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    assert 'argument --seed: must be an integer' in err, err
    if seed != '1e3':
        assert 'from 0 to 2**63 - 1' in err


def test_the_largest_seed_trains(data_root, tmp_path):
    """The seeds derived per epoch (seed * 100003 + epoch, ...) stay in the
    range of torch.Generator.manual_seed: MAX_SEED used to fail after the
    data were simulated ('Overflow when unpacking long long')."""
    from tests.train._helpers import make_config, quiet
    from torch_geometric_remul.train import train
    config = make_config(tmp_path / 'run', data_root, epochs=1, seed=MAX_SEED)
    result = train(config, progress=False, log=quiet)
    assert len(result.history) == 1 and math.isfinite(result.test['mse'])
    assert derive_seed(MAX_SEED, 100003, 5) == \
        (MAX_SEED * 100003 + 5) % 2**64
    assert derive_seed(12345, 100003, 5) == 12345 * 100003 + 5  # unchanged


@pytest.mark.parametrize('text,message', [
    ('{"beta": 1.0, "beta": 2.0}', "key 'beta' given twice"),
    ('{"extra": {"note": 1, "note": 2}}', "key 'note' given twice"),
])
def test_json_config_refuses_repeated_keys(tmp_path, text, message):
    path = tmp_path / 'c.json'
    path.write_text(text)
    with pytest.raises(ConfigFileError) as info:
        load_config(str(path))
    assert str(path) in str(info.value) and message in str(info.value)


@pytest.mark.parametrize('text,message', [
    ('task: gravity\nbeta: 1.0\nbeta: 2.0\n', "key 'beta' given twice "
     "(line 3)"),
    ('extra: {a: 1, a: 2}\n', "key 'a' given twice"),
    ('beta: &b 2.0\nalpha: *b\n', 'YAML anchor &b at line 1'),
    # an alias bomb: refused at its first anchor, nothing expanded
    ('a: &a ["x", "x"]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n'
     + ''.join(f'{c}: &{c} [{", ".join([f"*{p}"] * 9)}]\n'
               for p, c in zip('bcdefgh', 'cdefghi')), 'YAML anchor &a'),
])
def test_yaml_config_refuses_repeated_keys_and_aliases(tmp_path, text,
                                                       message):
    pytest.importorskip('yaml')
    path = tmp_path / 'c.yaml'
    path.write_text(text)
    with pytest.raises(ConfigFileError) as info:
        read_config_file(str(path))
    assert str(path) in str(info.value) and message in str(info.value)


def test_config_file_size_is_capped(tmp_path, capsys):
    from torch_geometric_remul.train.config import MAX_CONFIG_BYTES
    path = tmp_path / 'big.json'
    path.write_text('{"extra": {"pad": "' + 'x' * MAX_CONFIG_BYTES + '"}}')
    with pytest.raises(ConfigFileError, match=r'big.json is not a valid '
                       r'configuration file \(larger than 1048576 bytes'):
        read_config_file(str(path))
    # an endless device: refused after 1 MiB, not a MemoryError
    assert main(['train', '--no-progress', '--config', '/dev/zero']) == 1
    line = one_line_error(capsys.readouterr().err)
    assert '/dev/zero is not a valid configuration file (larger than' in line
