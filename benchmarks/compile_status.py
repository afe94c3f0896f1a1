"""torch.compile status: the model alone, and the whole REMUL step.

Usage:  python benchmarks/compile_status.py [--model gnn] [--graphs 100]
                                            [--nodes 5] [--repeats 20]
                                            [--unfused] [--native]
                                            [--json FILE] [--explain-only]

On the N-body-shaped batch of benchmarks/loss.py (GRAPHS graphs x NODES
nodes, fully connected, float32, random stand-in values), with the README's
declarations (Roles(vectors='vel', output='point')) and the fused REMUL
loss (--unfused: two forward passes; --native: torch-scatter/torch-cluster
and the C kernel switched off, as REMUL_FORCE_NATIVE=1 does):

  1. compiles the model alone (`torch.compile(model)`, default inductor
     backend), checks that it gives the eager output, and times the REMUL
     training step (RemulLoss(beta=1) forward + backward + Adam step) with
     the eager and the compiled model (interleaved medians) and the first,
     compiling call;
  2. runs `torch._dynamo.explain` on the REMUL step (forward, loss and
     backward; `loss.backward()` is traced into the graph with
     `torch._dynamo.config.trace_autograd_ops`; the optimizer stays
     outside: torch breaks the graph around `Optimizer.step` on purpose and
     skips `zero_grad`), prints its graph count, graph-break count and
     where and why the graphs break, and whether
     `torch.compile(step, fullgraph=True)` traces it (the eager backend: no
     Inductor compile) (--explain-only: part 2 alone, seconds).

Prints the figures; --json FILE also writes them. Takes a minute or two on
2 cores (most of it compiling).
"""
import argparse
import contextlib
import json
import logging
import os.path as osp
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from loss import MODEL_KWARGS, nbody_batch  # noqa: E402

import torch_geometric_remul.typing as remul_typing  # noqa: E402
from _timing import interleaved_median, machine_description  # noqa: E402
from torch_geometric_remul.nn import RemulLoss  # noqa: E402
from torch_geometric_remul.nn.models import build_model  # noqa: E402
from torch_geometric_remul.roles import Roles  # noqa: E402


def _time_compiled(args, model, compiled, step, out):
    batch = nbody_batch(args.graphs, args.nodes)
    t0 = time.perf_counter()
    step(compiled)
    out['first_compiled_step_s'] = time.perf_counter() - t0
    with torch.no_grad():
        diff = (compiled(batch) - model(batch)).abs().max().item()
    out['max_abs_difference'] = diff
    times = interleaved_median({'eager': lambda: step(model),
                                'compiled': lambda: step(compiled)},
                               repeats=args.repeats, warmup=2)
    out['eager_step_ms'] = 1e3 * times['eager']
    out['compiled_model_step_ms'] = 1e3 * times['compiled']
    out['speedup'] = times['eager'] / times['compiled']
    return times


class _BreakLog(logging.Handler):
    """Collects 'where: why' of each graph break that dynamo logs."""
    def __init__(self):
        super().__init__()
        self.reasons = []

    def emit(self, record):
        lines = record.getMessage().splitlines()
        where = [x for x in lines if 'Graph break in user code at' in x]
        why = [x.strip()[len('Explanation: '):] for x in lines
               if x.strip().startswith('Explanation:')]
        if where:
            root = osp.dirname(osp.dirname(osp.abspath(__file__)))
            at = where[0].split(' at ', 1)[1].replace(root + osp.sep, '')
            self.reasons.append(f'{at}: {why[0] if why else "?"}')


def _traced_backward():
    """``loss.backward()`` traced into the graph (torch >= 2.13's
    ``trace_autograd_ops``; older torch breaks the graph there)."""
    if hasattr(torch._dynamo.config, 'trace_autograd_ops'):
        return torch._dynamo.config.patch(trace_autograd_ops=True)
    return contextlib.nullcontext()


def _explain(step, model, out):
    """Part 2: the breaks of the whole step, and whether it compiles with
    ``fullgraph=True``."""
    torch._dynamo.reset()
    breaks = _BreakLog()
    torch._logging.set_logs(graph_breaks=True)
    loggers = [logging.getLogger(name) for name in
               list(logging.root.manager.loggerDict)
               if name.endswith('__graph_breaks')]
    for log in loggers:
        log.addHandler(breaks)
    try:
        with _traced_backward():
            explanation = torch._dynamo.explain(lambda: step(model))()
    finally:
        for log in loggers:
            log.removeHandler(breaks)
        torch._logging.set_logs()
    torch._dynamo.reset()
    try:
        with _traced_backward():
            torch.compile(lambda: step(model), backend='eager',
                          fullgraph=True)()
        fullgraph = 'yes'
    except Exception as e:  # noqa: BLE001 - reported, not raised
        fullgraph = f'no ({type(e).__name__}: {str(e).splitlines()[0]})'
    out.update(graph_count=explanation.graph_count,
               graph_break_count=explanation.graph_break_count,
               break_reasons=breaks.reasons, fullgraph=fullgraph)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default='gnn')
    parser.add_argument('--graphs', type=int, default=100)
    parser.add_argument('--nodes', type=int, default=5)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--json', default=None)
    parser.add_argument('--unfused', action='store_true',
                        help='the unfused REMUL loss (two forward passes)')
    parser.add_argument('--native', action='store_true',
                        help='switch torch-scatter/torch-cluster and the C '
                        'kernel off (as REMUL_FORCE_NATIVE=1)')
    parser.add_argument('--explain-only', action='store_true',
                        help='skip part 1 (compiling and timing)')
    args = parser.parse_args(argv)
    print(f'machine: {machine_description()}; model: {args.model}; batch: '
          f'{args.graphs} graphs x {args.nodes} nodes; '
          f'{"unfused" if args.unfused else "fused"} REMUL loss; '
          f'{"native paths" if args.native else "accelerators if installed"}')
    batch = nbody_batch(args.graphs, args.nodes)
    out = {'machine': machine_description(), 'model': args.model,
           'graphs': args.graphs, 'nodes': args.nodes,
           'fused': not args.unfused, 'native': args.native}
    roles = Roles(vectors='vel', output='point')
    options = dict(MODEL_KWARGS, roles=roles)
    for key in ('output', 'points', 'vectors'):
        options.pop(key)
    if args.model == 'transformer':
        options['max_num_nodes'] = args.nodes  # static: no host read
    if args.model == 'mlp':
        options['num_nodes'] = args.nodes
    native = (remul_typing.force_native() if args.native else
              contextlib.nullcontext())
    with native:
        torch.manual_seed(0)
        model = build_model(args.model, **options)
        compiled = torch.compile(model)
        loss_fn = RemulLoss(roles=roles, group='SO3', beta=1.0,
                            fused=not args.unfused)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def remul_step(m):  # what is compiled: forward, loss, backward
            loss_fn(m, batch, batch.y).loss.backward()

        def step(m):
            opt.zero_grad(set_to_none=True)
            remul_step(m)
            opt.step()

        if not args.explain_only:
            _time_compiled(args, model, compiled, step, out)
            print(f"1. torch.compile(model): first step (compiling) "
                  f"{out['first_compiled_step_s']:.1f} s; max |compiled - "
                  f"eager| = {out['max_abs_difference']:.1e}; REMUL step "
                  f"eager {out['eager_step_ms']:.2f} ms, compiled model "
                  f"{out['compiled_model_step_ms']:.2f} ms "
                  f"({out['speedup']:.2f}x)")
        _explain(remul_step, model, out)
    print(f"2. the REMUL step (forward, loss and backward) under dynamo: "
          f"{out['graph_count']} graph(s), {out['graph_break_count']} graph "
          f"breaks{', at:' if out['break_reasons'] else ''}")
    for reason in out['break_reasons']:
        print(f'   - {reason}')
    print(f"   torch.compile(step, fullgraph=True): {out['fullgraph']}")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=1)


if __name__ == '__main__':
    main()
