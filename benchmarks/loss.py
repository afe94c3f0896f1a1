"""Training-step time: plain loss vs REMUL (unfused and fused) vs data
augmentation.

Usage:  python benchmarks/loss.py [--graphs 100] [--nodes 5] [--out DIR]
                                  [--quick] [--compile gnn,egnn]

At N-body size (GRAPHS graphs x NODES nodes, fully connected, float32
pos/vel/charge, edge attribute q_i q_j; random stand-in values, which do not
affect timing) one run times a full training step (zero_grad, forward, loss,
backward, Adam step) for the GNN and the Transformer:
  plain:         MSE(model(batch), y)
  REMUL:         RemulLoss(vectors='vel', group='SO3', beta=1), two forward
                 passes (clean + rotated);
  REMUL fused:   the same with fused=True, one forward pass on the clean and
                 rotated graphs concatenated;
  augment x2:    compute-matched augmentation, RemulLoss(alpha=0, beta=1,
                 num_samples=2, fused=True): two rotated copies of every
                 graph in one forward pass, as many graphs through the model
                 as REMUL's;
  augment x1:    one-copy augmentation, RemulLoss(alpha=0, beta=1): one
                 rotated copy, one forward pass.
Timings are interleaved medians; ratios are against the plain step of the
same model measured in the same run. Goal: REMUL <= 2.1x plain.

With --compile MODELS (e.g. --compile gnn) a second table times, for the
plain and the fused REMUL step of each listed model, three ways of running
it: eager; torch.compile(model) (the loss stays eager); and the compiled
whole step (torch.compile(..., fullgraph=True) of forward + loss +
backward, one graph with torch's trace_autograd_ops; the Adam step stays
eager). It also times the plain step on a batch of twice the graphs (the
model's share of the fused step, which runs it on the clean and the rotated
copies), eager and compiled. Medians of interleaved repeats after warm-up;
the time of each compiled variant's first calls (tracing + Inductor) is
reported separately as its compile time. The compiled-step REMUL loss
draws its group elements from torch's default generator (a torch.Generator
argument cannot be traced). Goals: the compiled fused step faster than
the eager fused one and within 1.6x of the compiled plain step.

Writes benchmarks/results/step.{json,md} (--out DIR: into DIR; --quick:
into a fresh temporary directory): the JSON holds the provenance (code
version, library versions, machine), the sizes, every candidate's median and
raw samples (ms) and the ratios; the markdown table is rendered from the
JSON alone (`markdown(payload)`).
"""
import argparse
import os
import shlex
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_geometric.data import Batch  # noqa: E402
from transforms import _header, _ms, output_directory, provenance, timed  # noqa: E402

from _runs import write_outputs  # noqa: E402
from _timing import keep_freed_memory, machine_description  # noqa: E402
from torch_geometric_remul.nn import RemulLoss  # noqa: E402
from torch_geometric_remul.nn.models import build_model  # noqa: E402

#: The name of the files written (``step.json``, ``step.md``).
NAME = 'step'

MODEL_KWARGS = dict(output='point', points='pos', vectors=('vel', ),
                    scalars=('charge', ), scalar_dim=1,
                    edge_scalars=('edge_attr', ), edge_scalar_dim=1)

MODEL_LABELS = {'gnn': 'GNN', 'transformer': 'Transformer', 'mlp': 'MLP',
                'egnn': 'EGNN', 'segnn': 'SEGNN'}

#: key -> (label, graph copies through the model per graph and step,
#: forward calls per step, what the step computes); table order.
CANDIDATES = {
    'plain': ('plain', 1, 1, 'MSE(model(batch), y)'),
    'remul': ('REMUL', 2, 2, "RemulLoss(vectors='vel', group='SO3', "
              'beta=1): clean + rotated, two forward passes'),
    'fused': ('REMUL fused', 2, 1, 'the same with fused=True: one forward '
              'pass on both copies'),
    'augment2': ('augment x2 (compute-matched)', 2, 1,
                 'RemulLoss(alpha=0, beta=1, num_samples=2, fused=True): '
                 'two rotated copies, one forward pass'),
    'augment1': ('augment x1', 1, 1, 'RemulLoss(alpha=0, beta=1): one '
                 'rotated copy'),
}


def nbody_batch(num_graphs: int, n: int, seed: int = 0) -> Batch:
    """A random, fully connected N-body-shaped batch (stand-in values)."""
    g = torch.Generator().manual_seed(seed)
    N = num_graphs * n
    ptr = torch.arange(0, N + 1, n)
    batch = torch.arange(num_graphs).repeat_interleave(n)
    # all ordered pairs i != j inside each graph
    local = torch.combinations(torch.arange(n), r=2)
    local = torch.cat([local, local.flip(1)]).t()
    offsets = (torch.arange(num_graphs) * n).repeat_interleave(local.size(1))
    edge_index = local.repeat(1, num_graphs) + offsets
    charge = torch.randint(0, 2, (N, 1), generator=g).float() * 2 - 1
    pos = torch.randn(N, 3, generator=g)
    vel = torch.randn(N, 3, generator=g)
    data = Batch(pos=pos, vel=vel, charge=charge, y=pos + 0.1 * vel,
                 edge_index=edge_index,
                 edge_attr=charge[edge_index[0]] * charge[edge_index[1]],
                 batch=batch, ptr=ptr)
    return data


def losses(generator):
    """The loss of every non-plain candidate, drawing its group elements
    from ``generator``."""
    common = dict(vectors='vel', group='SO3', generator=generator)
    return {
        'remul': RemulLoss(beta=1.0, **common),
        'fused': RemulLoss(beta=1.0, fused=True, **common),
        'augment2': RemulLoss(alpha=0.0, beta=1.0, num_samples=2,
                              fused=True, **common),
        'augment1': RemulLoss(alpha=0.0, beta=1.0, **common),
    }


#: key -> (label, what runs); the rows of the compiled table.
COMPILED = {
    'eager': ('eager', 'model and loss run eagerly'),
    'model': ('torch.compile(model)', 'the model compiled, the loss eager'),
    'step': ('compiled step', 'torch.compile of forward + loss + '
             'backward'),
}


def _traced_backward():
    """``loss.backward()`` traced into the compiled graph (torch >= 2.13's
    ``trace_autograd_ops``), so that the compiled step is one graph."""
    import contextlib
    if hasattr(torch._dynamo.config, 'trace_autograd_ops'):
        return torch._dynamo.config.patch(trace_autograd_ops=True)
    return contextlib.nullcontext()


def compiled_timings(name, batch, batch2, repeats, warmup):
    """Eager vs torch.compile(model) vs the compiled whole step, for the
    plain and the fused REMUL step of model ``name``, and the plain step on
    ``batch2`` (twice the graphs: the model's share of the fused step):
    ``{'rows': [...], 'ratios': {...}}`` with medians (ms, compile time
    excluded) and each compiled variant's compile time (s, its warm-up
    calls)."""
    import time

    torch.manual_seed(0)
    model = build_model(name, **MODEL_KWARGS)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    compiled_model = torch.compile(model)
    fused = RemulLoss(vectors='vel', group='SO3', beta=1.0, fused=True)

    def plain_loss(m):
        return torch.nn.functional.mse_loss(m(batch), batch.y)

    def plain2x_loss(m):
        return torch.nn.functional.mse_loss(m(batch2), batch2.y)

    def fused_loss(m):
        return fused(m, batch, batch.y).loss

    def backward(loss_of, m):
        loss_of(m).backward()

    fns, compile_s = {}, {}
    for kind, loss_of, hows in (
            ('plain', plain_loss, ('eager', 'model', 'step')),
            ('plain2x', plain2x_loss, ('eager', 'step')),
            ('fused', fused_loss, ('eager', 'model', 'step'))):
        # one graph for forward, loss and backward (static shapes: each
        # batch size its own graph, as in a run of one size)
        step = torch.compile(lambda loss_of=loss_of: backward(loss_of,
                                                                model),
                             fullgraph=True, dynamic=False)
        runs = {'eager': lambda loss_of=loss_of: backward(loss_of, model),
                'model': lambda loss_of=loss_of: backward(loss_of,
                                                          compiled_model),
                'step': step}
        for how in hows:
            def fn(run=runs[how], traced=how == 'step'):
                opt.zero_grad(set_to_none=True)
                if traced:
                    with _traced_backward():
                        run()
                else:
                    run()
                opt.step()
            key = f'{kind}/{how}'
            t0 = time.perf_counter()
            for _ in range(warmup):
                fn()
            if how != 'eager':
                compile_s[key] = time.perf_counter() - t0
            fns[key] = fn
    t = timed(fns, repeats=repeats, warmup=0)
    rows = [dict(key=key, kind=key.split('/')[0], how=key.split('/')[1],
                 label=COMPILED[key.split('/')[1]][0], **t[key],
                 compile_s=compile_s.get(key)) for key in fns]
    med = {key: t[key]['median_ms'] for key in fns}
    ratios = {
        'fused_eager_over_fused_step': med['fused/eager'] / med[
            'fused/step'],
        'fused_eager_over_fused_model': med['fused/eager'] / med[
            'fused/model'],
        'plain_eager_over_plain_step': med['plain/eager'] / med[
            'plain/step'],
        'fused_step_over_plain_step': med['fused/step'] / med['plain/step'],
        'fused_eager_over_plain_eager': med['fused/eager'] / med[
            'plain/eager'],
        'plain2x_step_over_plain_step': med['plain2x/step'] / med[
            'plain/step'],
        'fused_step_over_plain2x_step': med['fused/step'] / med[
            'plain2x/step'],
        'fused_eager_over_plain2x_eager': med['fused/eager'] / med[
            'plain2x/eager'],
    }
    return dict(model=name, label=MODEL_LABELS[name], rows=rows,
                ratios=ratios)


def compiled_markdown(payload):
    """The table of the --compile section of a ``step.json`` payload."""
    lines = ['', '### Compiled (torch.compile, Inductor, CPU)', '',
             '| model | step | how | time (ms) | compile (s) |',
             '|---|---|---|---|---|']
    for m in payload['compiled']:
        for r in m['rows']:
            label = {'plain': 'plain', 'plain2x': 'plain, 2x graphs',
                     'fused': 'REMUL fused'}[r['kind']]
            c = '' if r['compile_s'] is None else f'{r["compile_s"]:.1f}'
            lines.append(f'| {m["label"]} | {label} | {r["label"]} | '
                         f'{_ms(r["median_ms"])} | {c} |')
    lines.append('')
    for m in payload['compiled']:
        q = m['ratios']
        lines.append(
            f'- {m["label"]}: compiled fused step '
            f'{q["fused_eager_over_fused_step"]:.2f}x faster than eager '
            f'fused (torch.compile(model): '
            f'{q["fused_eager_over_fused_model"]:.2f}x); compiled fused / '
            f'compiled plain {q["fused_step_over_plain_step"]:.2f}x (eager: '
            f'{q["fused_eager_over_plain_eager"]:.2f}x); the plain step on '
            f'twice the graphs / plain '
            f'{q["plain2x_step_over_plain_step"]:.2f}x compiled, so the '
            f'fused step costs {q["fused_step_over_plain2x_step"]:.2f}x the '
            f'model on both copies (eager: '
            f'{q["fused_eager_over_plain2x_eager"]:.2f}x).')
    lines += ['', 'Compile time: wall time of the warm-up calls of each '
              'compiled variant (tracing and Inductor), not in the medians. '
              '"plain, 2x graphs": the plain step on a batch of twice the '
              'graphs, what the fused step runs the model on (the clean '
              'and the rotated copies).']
    return '\n'.join(lines) + '\n'


def markdown(payload):
    """The markdown table of a ``step.json`` payload (built from the
    payload alone, so that the docs can include the file).

    Usage: ``markdown(json.load(open('benchmarks/results/step.json')))``
    """
    w = payload['workload']
    lines = _header(payload, f'Training step (zero_grad, forward, loss, '
                    f'backward, Adam): {w["graphs"]} graphs x {w["nodes"]} '
                    f'nodes, fully connected, float32')
    lines += ['| model | step | graph copies per graph | forward calls | '
              'time (ms) | / plain |', '|---|---|---|---|---|---|']
    for m in payload['models']:
        for c in m['candidates']:
            lines.append(f'| {m["label"]} | {c["label"]} | {c["copies"]} | '
                         f'{c["forward_calls"]} | {_ms(c["median_ms"])} | '
                         f'{c["vs_plain"]:.2f}x |')
    lines.append('')
    lines += [f'- {c["label"]}: {c["description"]}'
              for c in payload['models'][0]['candidates']]
    goal = payload['goal']
    lines += ['', f'Goal: {goal["goal"]}: ' + (
        'not checked (--quick)' if goal['met'] is None else
        'met' if goal['met'] else 'NOT met') + '.']
    text = '\n'.join(lines) + '\n'
    if payload.get('compiled'):
        text += compiled_markdown(payload)
    return text


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--graphs', type=int, default=100)
    parser.add_argument('--nodes', type=int, default=5)
    parser.add_argument('--repeats', type=int, default=50)
    parser.add_argument('--models', default='gnn,transformer')
    parser.add_argument('--compile', default='',
                        help='comma-separated models (e.g. gnn,egnn) to '
                        'time eager vs torch.compile(model) vs the compiled '
                        'step (Inductor: tens of seconds of compiling each)')
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes, for a smoke run (writes into a '
                        'temporary directory)')
    parser.add_argument('--out', default=None,
                        help='directory of step.json and .md (default: '
                        'benchmarks/results)')
    args = parser.parse_args(argv)
    names = [m.strip().lower() for m in args.models.split(',') if m.strip()]
    compile_names = [m.strip().lower() for m in args.compile.split(',')
                     if m.strip()]
    unknown = [m for m in compile_names if m not in MODEL_LABELS]
    if unknown:
        parser.error(f"--compile must be a comma-separated list of "
                     f"{', '.join(MODEL_LABELS)} (got {args.compile!r})")
    unknown = [m for m in names if m not in MODEL_LABELS]
    if unknown or not names:
        parser.error(f"--models must be a comma-separated list of "
                     f"{', '.join(MODEL_LABELS)} (got {args.models!r})")
    out_dir = output_directory(parser, args)
    if args.quick:
        args.graphs, args.repeats = 8, 3
    warmup = 3
    keep_freed_memory()
    where = machine_description()
    print(f'machine: {where}')
    print(f'batch: {args.graphs} graphs x {args.nodes} nodes, fully '
          f'connected, float32 (random stand-in values)\n')
    batch = nbody_batch(args.graphs, args.nodes)

    models = []
    for name in names:
        torch.manual_seed(0)
        model = build_model(name, **MODEL_KWARGS)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        loss_fns = losses(torch.Generator().manual_seed(0))

        def step(loss_of, model=model, opt=opt):
            opt.zero_grad(set_to_none=True)
            loss_of().backward()
            opt.step()

        fns = {'plain': lambda step=step, model=model: step(
            lambda: torch.nn.functional.mse_loss(model(batch), batch.y))}
        for key, loss in loss_fns.items():
            fns[key] = lambda step=step, loss=loss, model=model: step(
                lambda: loss(model, batch, batch.y).loss)
        t = timed(fns, repeats=args.repeats, warmup=warmup)
        plain = t['plain']['median_ms']
        models.append(dict(
            model=name, label=MODEL_LABELS[name],
            params=sum(p.numel() for p in model.parameters()),
            candidates=[dict(key=key, label=label, copies=copies,
                             forward_calls=calls, description=what,
                             **t[key], vs_plain=t[key]['median_ms'] / plain)
                        for key, (label, copies, calls, what)
                        in CANDIDATES.items()]))

    batch2 = nbody_batch(2 * args.graphs, args.nodes, seed=1)
    compiled = [compiled_timings(name, batch, batch2, args.repeats, warmup)
                for name in compile_names]

    ratios = {}
    for m in models:
        for c in m['candidates'][1:]:
            ratios[f'{m["model"]}/{c["key"]}_over_plain'] = c['vs_plain']
    # best of unfused/fused REMUL per model, the worst model counts
    worst = max(min(ratios[f'{m["model"]}/remul_over_plain'],
                    ratios[f'{m["model"]}/fused_over_plain'])
                for m in models)
    goal = dict(goal='REMUL <= 2.1x plain (best of unfused/fused per model)',
                worst_best_ratio=worst,
                met=None if args.quick else worst <= 2.1)
    payload = dict(
        provenance(), benchmark=NAME,
        command=shlex.join(['python', 'benchmarks/loss.py', *argv]),
        machine_description=where, quick=args.quick, repeats=args.repeats,
        warmup=warmup, dtype='float32',
        workload=dict(graphs=args.graphs, nodes=args.nodes,
                      edges=int(batch.edge_index.size(1)),
                      graph='fully connected',
                      values='random stand-in (pos, vel, charge; '
                      'edge_attr = q_i q_j)'),
        models=models, ratios=ratios, goal=goal)
    if compiled:
        payload['compiled'] = compiled
    table = markdown(payload)
    print(table)
    paths = write_outputs(NAME, payload, table, directory=out_dir)
    print('wrote', ', '.join(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
