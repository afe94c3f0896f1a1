"""Forward and forward+backward time of every backbone, side by side.

Usage:  python benchmarks/models.py [--quick] [--repeats 25] [--out DIR]
                                    [--json FILE] [--task-data-root data]

Three workloads, float32, one batch each:
  N-body  100 graphs x 5 nodes, fully connected (20 edges per graph);
          inputs pos (point), vel (vector), charge (scalar), edge_attr =
          q_i q_j (edge scalar); output "point".
  21 random nodes, radius 2.5 (MD17-sized, not molecules)
          100 graphs x 21 nodes (aspirin's atom count), positions ~ N(0,
          1.2^2) per coordinate, radius graph (r = 2.5, max 32
          neighbours); inputs pos, vel, a random 4-way one-hot atom type
          (scalars); output "point". The batch of benchmarks/speed.py.
  MD17 task graphs
          the training split of `remul train --task md17 --source standin
          --num-train 100` (aspirin, RDKit MMFF94 stand-in, not MD17), from
          the task's own data pipeline (task_spec(...).load('train'): heavy
          atoms, radius graph of 5 A, atom one-hot, centred) and the task's
          model inputs (TaskSpec.model_kwargs). The stand-in trajectory is
          generated under --task-data-root on first use (RDKit, about 10 s
          on one core) and reused afterwards. Skipped, with a note, when it
          is missing and RDKit is not installed, and always in --quick.
Every model runs with its default width/depth (see each class); the MLP
flattens the fixed-size graphs. "Transformer (block)" is the same
Transformer with a block-diagonal mask over the whole batch instead of
padded per-graph attention (see the Transformer docstring).

Forward is timed under torch.no_grad(); forward+backward is one training
step without the optimizer (sum of squared outputs, backward, grads freed).
All candidates of a workload are timed interleaved (_timing.interleaved_median)
so that ratios against SEGNN and EGNN are measured in the same run.

Writes benchmarks/results/backbones.{json,md} (--out DIR: into DIR; --quick:
into a fresh temporary directory): the JSON holds the provenance (code
version, library versions, machine), the workloads' sizes, every candidate's
median and raw samples (ms) and the ratios; the markdown tables are rendered
from the JSON alone (`markdown(payload)`). --json FILE writes one more copy
of the JSON.
"""
import argparse
import json
import os
import os.path as osp
import shlex
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_geometric.data import Batch  # noqa: E402
from transforms import _header, _ms, output_directory, provenance, timed  # noqa: E402

from _runs import write_outputs  # noqa: E402
from _timing import keep_freed_memory, machine_description  # noqa: E402
from torch_geometric_remul.graph import fully_connected_graph, radius_graph  # noqa: E402
from torch_geometric_remul.nn.models import build_model  # noqa: E402

#: The name of the files written (``backbones.json``, ``backbones.md``).
NAME = 'backbones'

MODELS = [  # (label, registry name, extra kwargs)
    ('MLP', 'mlp', {}),
    ('GNN', 'gnn', {}),
    ('Transformer', 'transformer', {}),
    ('Transformer (block)', 'transformer', {'attention': 'block'}),
    ('EGNN', 'egnn', {}),
    ('SEGNN', 'segnn', {}),
]

#: The molecule of the MD17 task workload (the task's default).
TASK_MOLECULE = 'aspirin'


class Skipped(Exception):
    """A workload that cannot run here; the message says why."""


def make_batch(num_graphs, num_nodes, seed=0):
    g = torch.Generator().manual_seed(seed)
    N = num_graphs * num_nodes
    batch = torch.arange(num_graphs).repeat_interleave(num_nodes)
    ptr = torch.arange(num_graphs + 1) * num_nodes
    data = Batch(pos=torch.randn(N, 3, generator=g),
                 vel=torch.randn(N, 3, generator=g), batch=batch, ptr=ptr)
    return data


def nbody(num_graphs=100):
    data = make_batch(num_graphs, 5)
    g = torch.Generator().manual_seed(1)
    data.charge = torch.randint(0, 2, (data.num_nodes, 1),
                                generator=g).float() * 2 - 1
    data.edge_index = fully_connected_graph(ptr=data.ptr)
    src, dst = data.edge_index
    data.edge_attr = data.charge[src] * data.charge[dst]
    kwargs = dict(vectors=('vel', ), scalars=('charge', ), scalar_dim=1,
                  edge_scalars=('edge_attr', ), edge_scalar_dim=1)
    return data, kwargs, 5


def md17(num_graphs=100):
    """21 random nodes per graph, radius 2.5: MD17-sized (aspirin's atom
    count), not molecules (see :func:`md17_task` for the task's graphs)."""
    data = make_batch(num_graphs, 21)
    data.pos = data.pos * 1.2
    g = torch.Generator().manual_seed(2)
    types = torch.randint(0, 4, (data.num_nodes, ), generator=g)
    data.z = torch.nn.functional.one_hot(types, 4).float()
    data.edge_index = radius_graph(data.pos, 2.5, data.batch,
                                   max_num_neighbors=32)
    kwargs = dict(vectors=('vel', ), scalars=('z', ), scalar_dim=4)
    return data, kwargs, 21


def md17_task(num_graphs=100, data_root='data', log=print):
    """``(batch, model kwargs, nodes per graph, info)``: the
    training split (``num_train=num_graphs``) of the md17 task (RDKit
    stand-in of
    :data:`TASK_MOLECULE`) through the task's own data pipeline, and the
    task's model inputs. The stand-in is generated under ``data_root`` when
    missing.

    Raises:
        Skipped: When the stand-in is missing and RDKit is not installed.

    Usage: ``data, kwargs, n, info = md17_task(100, 'data')``
    """
    from torch_geometric_remul.datasets.md17 import find_md17_file
    from torch_geometric_remul.train import TrainConfig, task_spec
    config = TrainConfig(task='md17', source='standin', molecule=TASK_MOLECULE,
                         num_train=num_graphs, num_val=10, num_test=10,
                         data_root=data_root).resolved()
    root = osp.join(config.data_root, 'md17')
    try:
        path = find_md17_file(root, config.molecule, 'standin')[1]
        generated = False
    except FileNotFoundError:
        try:
            import rdkit  # noqa: F401
        except ImportError:
            raise Skipped(f'no {config.molecule} stand-in under {root} and '
                          f'RDKit is not installed to generate it (pip '
                          f'install rdkit)') from None
        log(f'generating the {config.molecule} stand-in under {root} '
            f'(RDKit MMFF94, once; about 10 s on one core)')
        path, generated = None, True
    with warnings.catch_warnings():
        # the description says it is a stand-in; the dataset warns again
        warnings.filterwarnings('ignore', '.*stand-in for MD17',
                                UserWarning)
        spec = task_spec(config)
        dataset = spec.load('train')
        graphs = [dataset[i] for i in range(len(dataset))]
    if path is None:
        path = find_md17_file(root, config.molecule, 'standin')[1]
    atoms = 'heavy atoms' if dataset.remove_hydrogens else 'all atoms'
    graph = (f'radius graph r = {dataset.cutoff:g} A over {atoms}'
             if dataset.graph == 'radius' else
             f'{dataset.graph} graph over {atoms}')
    sizes = sorted({g.num_nodes for g in graphs})
    if len(sizes) != 1:
        raise ValueError(f"md17_task: the MLP needs graphs of one size; the "
                         f"{config.molecule} task has sizes {sizes}")
    if spec.roles.output != 'point':
        raise ValueError(f"md17_task: the task's roles.output must be "
                         f"'point' (got {spec.roles.output!r})")
    info = dict(description=spec.description, molecule=config.molecule,
                source=config.source, file=path, generated=generated,
                graph=graph,
                config=dict(task='md17', source='standin',
                            molecule=config.molecule, num_train=num_graphs,
                            num_val=10, num_test=10,
                            data_root=config.data_root),
                inputs=dict(scalars=list(spec.invariants.get('scalars', ())),
                            scalar_dim=spec.invariants.get('scalar_dim')))
    return Batch.from_data_list(graphs), spec.model_kwargs, sizes[0], info


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def candidates(data, kwargs, num_nodes):
    models, fns = {}, {}
    for label, name, extra in MODELS:
        kw = dict(kwargs, **extra)
        if name == 'mlp':
            kw['num_nodes'] = num_nodes
        if 'roles' not in kw:  # a task's roles name the output already
            kw['output'] = 'point'
        torch.manual_seed(0)
        model = build_model(name, **kw)
        models[label] = model

        def forward(model=model):
            with torch.no_grad():
                model(data)

        def step(model=model):
            model(data).square().sum().backward()
            for p in model.parameters():
                p.grad = None

        fns[(label, 'fwd')] = forward
        fns[(label, 'step')] = step
    return models, fns


def _ratio(value):
    return f'{value:.3f}' if value < 1 else f'{value:.2f}'


def markdown(payload):
    """The markdown tables of a ``backbones.json`` payload (built from the
    payload alone, so that the docs can include the file).

    Usage: ``markdown(json.load(open('benchmarks/results/backbones.json')))``
    """
    labels = '; '.join(w['label'] for w in payload['workloads'])
    lines = _header(payload, f'Backbones, forward and forward + backward '
                    f'per batch, float32 ({labels})')
    lines += ['/ SEGNN, / EGNN: the time divided by SEGNN\'s (EGNN\'s) on '
              'the same batch, in the same run (below 1: faster). '
              'Forward under torch.no_grad(); forward + backward without '
              'the optimizer.', '']
    for w in payload['workloads']:
        if 'skipped' in w:
            lines += [f'**{w["label"]}**: skipped ({w["skipped"]}).', '']
            continue
        lines += [f'**{w["label"]}**: {w["graphs"]} graphs x '
                  f'{w["nodes_per_graph"]} nodes, {w["graph"]}, '
                  f'{w["edges"]:,} edges (mean in-degree '
                  f'{w["mean_in_degree"]:.1f}).', '',
                  '| model | params | forward (ms) | / SEGNN | / EGNN | '
                  'fwd+bwd (ms) | / SEGNN | / EGNN |', '|' + '---|' * 8]
        for r in w['rows']:
            lines.append(
                f'| {r["model"]} | {r["params"]:,} | '
                f'{_ms(r["forward"]["median_ms"])} | '
                f'{_ratio(r["forward_vs_SEGNN"])} | '
                f'{_ratio(r["forward_vs_EGNN"])} | '
                f'{_ms(r["step"]["median_ms"])} | '
                f'{_ratio(r["step_vs_SEGNN"])} | '
                f'{_ratio(r["step_vs_EGNN"])} |')
        lines.append('')
    return '\n'.join(lines)


def measure(key, label, graph, made, repeats, warmup):
    """The JSON entry of one workload: its sizes and every model's times
    and ratios."""
    data, kwargs, n = made[:3]
    models, fns = candidates(data, kwargs, n)
    t = timed(fns, repeats=repeats, warmup=warmup)
    rows = []
    for name, model in models.items():
        row = dict(model=name, params=num_params(model),
                   forward=t[(name, 'fwd')], step=t[(name, 'step')])
        for ref in ('SEGNN', 'EGNN'):
            for kind, short in (('forward', 'fwd'), ('step', 'step')):
                row[f'{kind}_vs_{ref}'] = (t[(name, short)]['median_ms'] /
                                           t[(ref, short)]['median_ms'])
        rows.append(row)
    edges = int(data.edge_index.size(1))
    if graph is None:
        graph = made[3]['graph']
    out = dict(key=key, label=label, graphs=int(data.num_graphs),
               nodes_per_graph=n, nodes=int(data.num_nodes), graph=graph,
               edges=edges, mean_in_degree=edges / data.num_nodes, rows=rows)
    if len(made) > 3:
        out['task'] = made[3]
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--graphs', type=int, default=100)
    parser.add_argument('--repeats', type=int, default=25)
    parser.add_argument('--quick', action='store_true',
                        help='tiny repeats and batches, for a smoke run '
                        '(writes into a temporary directory; skips the MD17 '
                        'task graphs)')
    parser.add_argument('--out', default=None,
                        help='directory of backbones.json and .md (default: '
                        'benchmarks/results)')
    parser.add_argument('--json', help='also write the JSON to this file')
    parser.add_argument('--task-data-root', default='data',
                        help='data root of the MD17 task graphs (the '
                        'stand-in is generated there when missing)')
    args = parser.parse_args(argv)
    out_dir = output_directory(parser, args)
    keep_freed_memory()
    warmup = 2
    if args.quick:
        args.repeats, args.graphs, warmup = 1, 4, 1
    where = machine_description()
    print(f'machine: {where}')
    print(f'repeats: {args.repeats} interleaved, median; float32\n')

    workloads = [
        ('nbody', 'N-body', 'fully connected', nbody),
        ('md17_sized', '21 random nodes, radius 2.5 (MD17-sized, not '
         'molecules)', 'radius graph r = 2.5, at most 32 neighbours', md17),
        ('md17_task', f'MD17 task graphs ({TASK_MOLECULE}, RDKit MMFF94 '
         f'stand-in, not MD17)', None,  # the dataset's own (see md17_task)
         lambda g: md17_task(g, args.task_data_root)),
    ]
    entries = []
    for key, label, graph, make in workloads:
        if key == 'md17_task' and args.quick:
            reason = 'not run in --quick'
        else:
            try:
                made = make(args.graphs)
                reason = None
            except Skipped as e:
                reason = str(e)
        if reason is not None:
            print(f'{label}: skipped ({reason})')
            entries.append(dict(key=key, label=label, skipped=reason))
            continue
        entries.append(measure(key, label, graph, made, args.repeats,
                               warmup))
        print(f'{label}: done')
    payload = dict(
        provenance(), benchmark=NAME,
        command=shlex.join(['python', 'benchmarks/models.py', *argv]),
        machine_description=where, quick=args.quick, repeats=args.repeats,
        warmup=warmup, dtype='float32', workloads=entries)
    table = markdown(payload)
    print('\n' + table)
    paths = write_outputs(NAME, payload, table, directory=out_dir)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(payload, f, indent=2)
        paths.append(args.json)
    print('wrote', ', '.join(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
