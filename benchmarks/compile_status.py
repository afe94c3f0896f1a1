"""torch.compile status: the model alone, and the whole REMUL step.

Usage:  python benchmarks/compile_status.py [--model gnn] [--graphs 100]
                                            [--nodes 5] [--repeats 20]
                                            [--json FILE] [--explain-only]

On the N-body-shaped batch of benchmarks/loss.py (GRAPHS graphs x NODES
nodes, fully connected, float32, random stand-in values), with the native
paths forced (torch-scatter/torch-cluster ops and the ctypes C kernel have no
fake implementations, so they cannot be traced):

  1. compiles the model alone (`torch.compile(model)`, default inductor
     backend), checks that it gives the eager output, and times the REMUL
     training step (RemulLoss(vectors='vel', beta=1) forward + backward +
     Adam step) with the eager and the compiled model (interleaved medians)
     and the first, compiling call;
  2. runs `torch._dynamo.explain` on the whole step function (loss included)
     and prints its graph count, graph-break count and where and why the
     first graphs break (--explain-only: part 2 alone, seconds).

Prints the figures; --json FILE also writes them. Takes a minute or two on
2 cores (most of it compiling).
"""
import argparse
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default='gnn')
    parser.add_argument('--graphs', type=int, default=100)
    parser.add_argument('--nodes', type=int, default=5)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--json', default=None)
    parser.add_argument('--explain-only', action='store_true',
                        help='skip part 1 (compiling and timing)')
    args = parser.parse_args(argv)
    print(f'machine: {machine_description()}; model: {args.model}; batch: '
          f'{args.graphs} graphs x {args.nodes} nodes')
    batch = nbody_batch(args.graphs, args.nodes)
    out = {'machine': machine_description(), 'model': args.model,
           'graphs': args.graphs, 'nodes': args.nodes}
    with remul_typing.force_native():
        torch.manual_seed(0)
        model = build_model(args.model, **MODEL_KWARGS)
        compiled = torch.compile(model)
        loss_fn = RemulLoss(vectors='vel', group='SO3', beta=1.0,
                            generator=torch.Generator().manual_seed(0))
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step(m):
            opt.zero_grad(set_to_none=True)
            loss_fn(m, batch, batch.y).loss.backward()
            opt.step()

        if args.explain_only:
            times = None
        else:
            times = _time_compiled(args, model, compiled, step, out)
        if times is not None:
            print(f"1. torch.compile(model): first step (compiling) "
                  f"{out['first_compiled_step_s']:.1f} s; max |compiled - "
                  f"eager| = {out['max_abs_difference']:.1e}; REMUL step "
                  f"eager {out['eager_step_ms']:.2f} ms, compiled model "
                  f"{out['compiled_model_step_ms']:.2f} ms "
                  f"({out['speedup']:.2f}x)")


        torch._dynamo.reset()
        breaks = _BreakLog()
        torch._logging.set_logs(graph_breaks=True)
        loggers = [logging.getLogger(name) for name in
                   list(logging.root.manager.loggerDict)
                   if name.endswith('__graph_breaks')]
        for log in loggers:
            log.addHandler(breaks)
        try:
            explanation = torch._dynamo.explain(lambda: step(model))()
        finally:
            for log in loggers:
                log.removeHandler(breaks)
            torch._logging.set_logs()
        reasons = breaks.reasons
        out.update(graph_count=explanation.graph_count,
                   graph_break_count=explanation.graph_break_count,
                   break_reasons=reasons)
        print(f'2. the whole step (loss + backward + Adam) under dynamo: '
              f'{explanation.graph_count} graphs, '
              f'{explanation.graph_break_count} graph breaks, at:')
        for reason in reasons:
            print(f'   - {reason}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=1)


if __name__ == '__main__':
    main()
