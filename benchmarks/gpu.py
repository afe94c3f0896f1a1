"""One-shot GPU benchmark: the per-graph transform against the memory floor,
REMUL's training-step overhead, inference and training-step time against
EGNN and SEGNN, and host-device synchronisations per step (issue 12).

Usage, from the repository root (the package need not be installed):

    PYTHONPATH=. python benchmarks/gpu.py            # CUDA, well under 5 min
    PYTHONPATH=. python benchmarks/gpu.py --quick    # CPU smoke run, seconds

Options: --out DIR (default benchmarks/results; --quick alone writes into a
new temporary directory), --device (default cuda when available, cpu for
--quick), --max-seconds S (soft deadline of the timed loops, default 240).
Writes DIR/gpu.json and DIR/gpu.md and prints the same tables. --quick runs
every section on tiny batches with few repeats, with a 2-block Transformer
in place of the paper's and a 1-layer SEGNN (their size only costs set-up
time there); it is part of the test suite (tests/test_benchmarks_gpu.py).

Sections (float32, random stand-in values, which do not affect timing):

1. Per-graph transform, on 20,000 graphs x 25 nodes and on a batch of
   2,000,000 nodes in graphs of 1..49 nodes, with float32 ``pos`` + ``vel``:
     clone         ``pos.clone(), vel.clone()``: the memory floor;
     apply         ``RigidTransform.apply_points(pos, ptr=ptr)`` and
                   ``apply_vectors(vel, ptr=ptr)`` (the library's own
                   dispatch: the fused Triton kernel on CUDA when triton
                   imports); "apply (batch=)" passes ``batch`` instead;
     apply native  the same calls inside ``typing.force_native()``;
     RandomRigidTransform(vectors='vel') on the Batch (sampling included),
                   dispatched and native.
   Achieved GB/s counts the bytes read and written once (pos, vel, their
   outputs, R, t and ptr or batch); "x clone" is the time over the clone's.
   The largest difference between the dispatched and the native outputs
   is recorded too (max_abs_diff_vs_native).
2. Models, at N-body size (GRAPHS x 5 nodes, fully connected, charges and
   the edge attribute q_i q_j) and MD17 size (GRAPHS x 21 nodes, radius
   graph r = 2.5, at most 32 neighbours, 4-way one-hot atom type), GRAPHS =
   100 and 1,000 (the batches of benchmarks/models.py). Models: GNN,
   Transformer (default size, and the paper's 10 blocks x 384 wide, 8
   heads), EGNN, SEGNN (skipped, with a note, when e3nn does not import).
   Per model: inference (eval mode, ``torch.inference_mode()``) and the
   training step (zero_grad, loss, backward, Adam step) with the plain MSE,
   with ``RemulLoss(vectors='vel', group='SO3', beta=1)`` (two forward
   passes) and with ``fused=True`` (one forward pass on both copies); SEGNN
   only plain. Ratios: REMUL step / plain step, and how many times faster
   than SEGNN and EGNN (their inference, their plain training step).
3. Syncs per step: ``testing.count_syncs()`` around one forward + backward
   (no optimizer step) of each model with each loss, after one warm-up step,
   on CPU copies of the 100-graph batches (so it works everywhere) and, on
   CUDA, on the device batches; plus the transform calls of section 1.

4. Compiled steps (issue 26; on by default on CUDA, --compile on|off):
   the GNN at N-body size with GRAPHS = 100 and 1,000, the plain and the
   fused REMUL training step each run eagerly, as torch.compile of forward
   + loss + backward (the Adam step eager), and the same with
   mode="reduce-overhead" (CUDA graphs). The compiled REMUL loss draws from
   the device's default generator (a torch.Generator argument cannot be
   traced). Each compiled variant's first calls (tracing, Inductor, CUDA
   graph capture) are timed on their own as its compile time. Goals: with
   CUDA graphs, fused REMUL <= 1.3x plain at 100 graphs, <= 2x at 1,000.

Timing: candidates of one workload run interleaved (a, b, c, a, b, c, ...)
and are summarised by their median. On CUDA each timed call is bracketed by
CUDA events on an idle stream (synchronised before the call), so a
launch-bound step counts its launch overhead; on CPU, perf_counter. Every
candidate gets WARMUP untimed calls, then as many repeats as fit in its
time budget (--budget seconds, at least --min-repeats and at most
--repeats), so a slow SEGNN step costs a bounded time. After --max-seconds
the remaining candidates get --min-repeats only (noted in the JSON).
The library's kernels are built before anything is timed (their status is
in the JSON). The JSON also records the device, torch/triton/PyG/e3nn
versions, the git commit (when git can tell it) and the date.

Goals (issue 12): apply <= 1.5x clone; REMUL step <= 2x plain; GNN and
Transformer inference >= 10x faster than SEGNN and not slower than EGNN at
1,000-graph batches.
"""
import argparse
import datetime
import json
import math
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
import time
import traceback
from typing import Callable, Dict, List, Optional

import torch

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
sys.path.insert(0, HERE)
import torch_geometric  # noqa: E402
from models import md17, nbody, num_params  # noqa: E402
from transforms import make_batch  # noqa: E402

import torch_geometric_remul.train.provenance as provenance  # noqa: E402
import torch_geometric_remul.typing as remul_typing  # noqa: E402
from _timing import keep_freed_memory, machine_description  # noqa: E402
from torch_geometric_remul.group import RigidTransform  # noqa: E402
from torch_geometric_remul.nn import RemulLoss  # noqa: E402
from torch_geometric_remul.nn.models import build_model  # noqa: E402
from torch_geometric_remul.testing import count_syncs  # noqa: E402
from torch_geometric_remul.transforms import RandomRigidTransform  # noqa

#: (label, registry name, constructor arguments beyond the workload's)
MODELS = [
    ('GNN', 'gnn', {}),
    ('Transformer', 'transformer', {}),
    ('Transformer (paper)', 'transformer',
     dict(hidden_channels=384, num_layers=10, heads=8)),
    ('EGNN', 'egnn', {}),
    ('SEGNN', 'segnn', {}),
]
#: the exactly equivariant baselines, trained with the plain loss
EQUIVARIANT = ('SEGNN', 'EGNN')
#: timed with the plain loss only (EGNN also gets the REMUL steps, to
#: measure REMUL's overhead on a third architecture)
PLAIN_ONLY = ('SEGNN', )
#: the models whose syncs are counted (the paper-size Transformer runs the
#: same code as the default one)
SYNC_MODELS = ('GNN', 'Transformer', 'EGNN', 'SEGNN')
LOSSES = ('plain', 'remul', 'fused')

FULL = dict(transform_graphs=20000, transform_nodes=25,
            mixed_nodes=2_000_000, graphs=(100, 1000), sync_graphs=100,
            repeats=30, min_repeats=5, warmup=3, budget=1.0, sizes={})
QUICK = dict(transform_graphs=200, transform_nodes=5, mixed_nodes=1000,
             graphs=(2, 3), sync_graphs=2, repeats=2, min_repeats=1,
             warmup=1, budget=0.05,
             # smaller models where their size only costs set-up time
             sizes={'Transformer (paper)': dict(hidden_channels=32,
                                                num_layers=2, heads=8),
                    'SEGNN': dict(num_layers=1)})


# Timing ####################################################################

class Clock:
    """Times one call: CUDA events on CUDA, perf_counter on CPU; tracks the
    soft deadline after which timing loops shrink to their minimum."""
    def __init__(self, device: torch.device, max_seconds: float):
        self.device = device
        self.cuda = device.type == 'cuda'
        self.start = time.perf_counter()
        self.max_seconds = max_seconds
        self.late = False

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def past_deadline(self) -> bool:
        self.late = self.late or self.elapsed() > self.max_seconds
        return self.late

    def wall(self, fn: Callable[[], object]) -> float:
        self.sync()
        t0 = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - t0

    def timed(self, fn: Callable[[], object]) -> float:
        if not self.cuda:
            return self.wall(fn)
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        self.sync()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3


def interleaved(fns: Dict[str, Callable[[], object]], clock: Clock,
                repeats: int, min_repeats: int, warmup: int,
                budget: float) -> Dict[str, Dict]:
    """Median time in seconds of each callable, timed interleaved.

    Each candidate first runs ``warmup`` times (the last warm-up call,
    synchronised, estimates its cost); then it gets
    ``clamp(budget / cost, min_repeats, repeats)`` timed calls, and the
    candidates take turns until each has had its own count.
    """
    cost = {}
    for name, fn in fns.items():
        for _ in range(max(warmup, 1)):
            cost[name] = clock.wall(fn)
    late = clock.past_deadline()
    count = {}
    for name in fns:
        n = min_repeats if late else int(budget / max(cost[name], 1e-9))
        count[name] = max(min_repeats, min(repeats, n))
    samples: Dict[str, List[float]] = {name: [] for name in fns}
    for i in range(max(count.values())):
        for name, fn in fns.items():
            if i < count[name]:
                samples[name].append(clock.timed(fn))
    return {name: dict(median_s=statistics.median(v), min_s=min(v),
                       repeats=len(v)) for name, v in samples.items()}


# Environment ###############################################################

def _version(module: str) -> Optional[str]:
    try:
        mod = __import__(module)
    except Exception:  # noqa: BLE001 - absent or broken: not available
        return None
    return getattr(mod, '__version__', 'unknown')


def _git(*args: str) -> Optional[str]:
    """``git <args>`` in the repository root, run as the package's
    provenance runs it (no command of the repository's configuration:
    fsmonitor, hooks, pager, filters, external diff), and only when that
    repository tracks this script."""
    if provenance._git(['ls-files', '--error-unmatch', '--',
                        osp.relpath(__file__, ROOT)], ROOT) is None:
        return None
    out = provenance._git(list(args), ROOT,
                          provenance._filter_overrides(ROOT))
    return None if out is None else out.decode(errors='replace').strip()


def git_commit() -> Dict:
    """The checked-out commit and whether tracked files differ from it;
    falls back to reading ``.git`` directly, then to ``None``."""
    commit = _git('rev-parse', 'HEAD')
    status = _git('status', '--porcelain', '--untracked-files=no',
                  '--ignore-submodules=all')
    if commit is None:
        try:
            with open(osp.join(ROOT, '.git', 'HEAD')) as f:
                head = f.read().strip()
            if head.startswith('ref: '):
                with open(osp.join(ROOT, '.git', head[5:])) as f:
                    head = f.read().strip()
            commit = head or None
        except OSError:
            commit = None
    return dict(commit=commit,
                modified=None if status is None else bool(status))


def environment(device: torch.device) -> Dict:
    env = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        device=str(device),
        device_name=(torch.cuda.get_device_name(device)
                     if device.type == 'cuda' else
                     machine_description().split(',')[0]),
        device_memory_gib=(
            torch.cuda.get_device_properties(device).total_memory / 2**30
            if device.type == 'cuda' else None),
        machine=machine_description(),
        python=platform.python_version(),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        triton=_version('triton'),
        torch_geometric=torch_geometric.__version__,
        e3nn=_version('e3nn'),
        float32_matmul_precision=torch.get_float32_matmul_precision(),
        accelerators={k: getattr(remul_typing, k) for k in dir(remul_typing)
                      if k.startswith('WITH_')},
    )
    env.update(git_commit())
    return env


def build_kernels(device: torch.device):
    """Builds the library's kernels before anything is timed (so that no
    timed call compiles, or runs the native path while a build is under
    way) and returns their status, or why not."""
    try:
        import torch_geometric_remul._kernels as kernels
        build = getattr(kernels, 'build_kernels', None)
        if build is None:
            return 'no build_kernels(): kernels build on first use'
        return build(cuda=device.type == 'cuda')
    except Exception as e:  # noqa: BLE001 - the run goes on without them
        return f'build failed: {type(e).__name__}: {e}'


# 1. Per-graph transform ####################################################

def mixed_sizes(total: int, mean: int, seed: int = 1) -> List[int]:
    """Graph sizes 1..2*mean-1, uniformly drawn, summing to ``total``."""
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, 2 * mean, (2 * total // mean + 2, ),
                          generator=g)
    keep = sizes[sizes.cumsum(0) <= total].tolist()
    if total - sum(keep) > 0:
        keep.append(total - sum(keep))
    return keep


def native(fn: Callable[[], object]) -> Callable[[], object]:
    def run():
        with remul_typing.force_native():
            return fn()
    return run


def transform_candidates(data, device):
    """``{name: fn}`` and the byte counts of one workload."""
    pos, vel, ptr, index = data.pos, data.vel, data.ptr, data.batch
    gen = torch.Generator(device=device).manual_seed(0)
    T = RigidTransform.sample(data.num_graphs, 'SE3', generator=gen,
                              device=device)
    random_rigid = RandomRigidTransform('SE3', vectors='vel', generator=gen)

    def clone():
        return pos.clone(), vel.clone()

    def apply():
        return T.apply_points(pos, ptr=ptr), T.apply_vectors(vel, ptr=ptr)

    def apply_batch():
        return (T.apply_points(pos, batch=index),
                T.apply_vectors(vel, batch=index))

    fns = {'clone': clone, 'apply': apply, 'apply (batch=)': apply_batch,
           'apply native': native(apply),
           'RandomRigidTransform': lambda: random_rigid(data),
           'RandomRigidTransform native': native(lambda: random_rigid(data))}
    moved = 2 * (pos.nbytes + vel.nbytes)
    extra = T.rotation.nbytes + T.translation.nbytes + ptr.nbytes
    nbytes = {name: moved + (0 if name == 'clone' else extra)
              for name in fns}
    nbytes['apply (batch=)'] += index.nbytes - ptr.nbytes
    # the dispatched and the native path must agree (checked off the clock)
    slow = native(apply)()
    diff = {name: max(float((a - b).abs().max()) if a.numel() else 0.0
                      for a, b in zip(fns[name](), slow))
            for name in ('apply', 'apply (batch=)')}
    return fns, nbytes, diff


def transform_section(cfg, device, clock, log) -> List[Dict]:
    B, n = cfg['transform_graphs'], cfg['transform_nodes']
    workloads = [(f'{B:,} graphs x {n} nodes', [n] * B),
                 (f'{cfg["mixed_nodes"]:,} nodes, graphs of 1..{2 * n - 1}',
                  mixed_sizes(cfg['mixed_nodes'], n))]
    rows = []
    for label, sizes in workloads:
        data = make_batch(sizes).to(device)
        fns, nbytes, diff = transform_candidates(data, device)
        t = interleaved(fns, clock, cfg['repeats'] * 2, cfg['min_repeats'],
                        cfg['warmup'], cfg['budget'] / 2)
        floor = t['clone']['median_s']
        for name, r in t.items():
            rows.append(dict(
                workload=label, graphs=len(sizes), nodes=sum(sizes),
                candidate=name, ms=r['median_s'] * 1e3,
                min_ms=r['min_s'] * 1e3, repeats=r['repeats'],
                bytes=nbytes[name],
                gb_per_s=nbytes[name] / r['median_s'] / 1e9,
                x_clone=r['median_s'] / floor,
                max_abs_diff_vs_native=diff.get(name)))
        log(f'transform, {label}: done ({clock.elapsed():.0f} s)')
        del data, fns
    return rows


# 2. Models #################################################################

def build_models(kwargs: Dict, cfg: Dict, log):
    models, notes = {}, []
    for label, name, extra in MODELS:
        if name == 'segnn' and _version('e3nn') is None:
            notes.append('SEGNN skipped: e3nn does not import')
            continue
        extra = cfg['sizes'].get(label, extra)
        torch.manual_seed(0)
        models[label] = (build_model(name, output='point', **kwargs, **extra),
                         extra)
    for note in notes:
        log(note)
    return models, notes


def losses(gen: torch.Generator) -> Dict[str, Callable]:
    """``{kind: loss(model, data) -> Tensor}``."""
    remul = RemulLoss(vectors='vel', group='SO3', beta=1.0, generator=gen)
    fused = RemulLoss(vectors='vel', group='SO3', beta=1.0, fused=True,
                      generator=gen)
    return {
        'plain': lambda model, data: torch.nn.functional.mse_loss(
            model(data), data.y),
        'remul': lambda model, data: remul(model, data, data.y).loss,
        'fused': lambda model, data: fused(model, data, data.y).loss,
    }


def model_candidates(models: Dict, data, device) -> Dict:
    """``{(label, kind): fn}`` on one batch: ``infer`` and one training
    step per loss."""
    gen = torch.Generator(device=device).manual_seed(0)
    loss_of = losses(gen)
    fns = {}
    for label, (model, _) in models.items():
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def infer(model=model):
            model.eval()
            with torch.inference_mode():
                model(data)

        def step(loss, model=model, opt=opt):
            model.train()
            opt.zero_grad(set_to_none=True)
            loss(model, data).backward()
            opt.step()

        fns[(label, 'infer')] = infer
        for kind in (('plain', ) if label in PLAIN_ONLY else LOSSES):
            fns[(label, kind)] = (lambda step=step, loss=loss_of[kind]:
                                  step(loss))
    return fns


def model_rows(models, t, workload, graphs, nodes) -> List[Dict]:
    ms = lambda key: t[key]['median_s'] * 1e3 if key in t else None  # noqa
    rows = []
    for label, (model, extra) in models.items():
        row = dict(workload=workload, graphs=graphs, nodes=nodes,
                   model=label, params=num_params(model), config=extra,
                   infer_ms=ms((label, 'infer')),
                   plain_ms=ms((label, 'plain')),
                   remul_ms=ms((label, 'remul')),
                   fused_ms=ms((label, 'fused')),
                   repeats={k: t[(label, k)]['repeats']
                            for k in ('infer', ) + LOSSES
                            if (label, k) in t})
        row['remul_over_plain'] = _ratio(row['remul_ms'], row['plain_ms'])
        row['fused_over_plain'] = _ratio(row['fused_ms'], row['plain_ms'])
        # the step each model is trained with: the equivariant baselines
        # plain, the others with the faster of the two REMUL variants
        row['train_ms'] = row['plain_ms'] if label in EQUIVARIANT else min(
            (v for v in (row['remul_ms'], row['fused_ms']) if v is not None),
            default=row['plain_ms'])
        for ref in EQUIVARIANT:
            # how many times faster than the reference
            row[f'infer_vs_{ref}'] = _ratio(ms((ref, 'infer')),
                                            row['infer_ms'])
            row[f'train_vs_{ref}'] = _ratio(ms((ref, 'plain')),
                                            row['train_ms'])
        rows.append(row)
    return rows


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None or b == 0 else a / b


# 3. Syncs ##################################################################

def count_step_syncs(model, loss, data) -> Dict:
    """Syncs of one forward + backward (no optimizer step), after one
    untimed warm-up step."""
    model.train()
    for counted in (False, True):
        for p in model.parameters():
            p.grad = None
        if counted:
            with count_syncs() as syncs:
                loss(model, data).backward()
        else:
            loss(model, data).backward()
    for p in model.parameters():
        p.grad = None
    return dict(count=syncs.count, ops=dict(syncs.ops))


def sync_rows(models, data, workload, device) -> List[Dict]:
    gen = torch.Generator(device=device).manual_seed(0)
    loss_of = losses(gen)
    rows = []
    for label in SYNC_MODELS:
        if label not in models:
            continue
        model = models[label][0]
        for kind in LOSSES:
            rows.append(dict(workload=workload, graphs=data.num_graphs,
                             device=device.type, what=label, kind=kind,
                             **count_step_syncs(model, loss_of[kind], data)))
    return rows


def transform_sync_rows(data, device) -> List[Dict]:
    fns, _, _ = transform_candidates(data, device)
    rows = []
    for name in ('apply', 'RandomRigidTransform'):
        fns[name]()  # warm-up (first-call set-up is not per step)
        with count_syncs() as syncs:
            fns[name]()
        rows.append(dict(workload='N-body', graphs=data.num_graphs,
                         device=device.type, what=name, kind='transform',
                         count=syncs.count, ops=dict(syncs.ops)))
    return rows


# Sections 2 and 3 share the models: built once per workload on the CPU,
# syncs counted there, then moved to the device and timed.

def model_section(cfg, device, clock, log):
    rows, syncs, notes, errors = [], [], [], []
    for workload, make in (('N-body', nbody), ('MD17', md17)):
        small, kwargs, nodes = make(cfg['sync_graphs'])
        small.y = small.pos + 0.1 * small.vel
        models, skipped = build_models(kwargs, cfg, log)
        notes += [f'{workload}: {s}' for s in skipped]
        cpu = torch.device('cpu')
        syncs += sync_rows(models, small, workload, cpu)
        if workload == 'N-body':
            syncs += transform_sync_rows(small, cpu)
        log(f'syncs, {workload} on cpu: done ({clock.elapsed():.0f} s)')
        for label in models:
            models[label] = (models[label][0].to(device), models[label][1])
        if device.type != 'cpu':
            data = small.to(device)
            syncs += sync_rows(models, data, workload, device)
            if workload == 'N-body':
                syncs += transform_sync_rows(data, device)
            del data
        for graphs in cfg['graphs']:
            try:
                data, _, _ = make(graphs)
                data = data.to(device)
                data.y = data.pos + 0.1 * data.vel
                fns = model_candidates(models, data, device)
                t = interleaved(fns, clock, cfg['repeats'],
                                cfg['min_repeats'], cfg['warmup'],
                                cfg['budget'])
                rows += model_rows(models, t, workload, graphs, nodes)
                log(f'models, {workload} x {graphs} graphs: done '
                    f'({clock.elapsed():.0f} s)')
            except Exception:  # noqa: BLE001 - e.g. out of memory
                errors.append(f'{workload} x {graphs} graphs:\n'
                              f'{traceback.format_exc()}')
                log(errors[-1])
            finally:
                data = fns = None
                if device.type == 'cuda':
                    torch.cuda.empty_cache()
        del models
    return rows, syncs, notes, errors


# 4. Compiled steps ##########################################################

#: how -> torch.compile options (None: eager); the rows of section 4
COMPILE_MODES = {'eager': None, 'compiled': {},
                 'reduce-overhead': {'mode': 'reduce-overhead'}}


def compile_candidates(model, data):
    """``{(kind, how): fn}``: the plain and the fused REMUL step of
    ``model`` on ``data``, eager and compiled (forward + loss + backward;
    the Adam step stays eager)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    fused = RemulLoss(vectors='vel', group='SO3', beta=1.0, fused=True)
    loss_of = {'plain': lambda: torch.nn.functional.mse_loss(model(data),
                                                             data.y),
               'fused': lambda: fused(model, data, data.y).loss}
    fns = {}
    for kind, loss in loss_of.items():
        def backward(loss=loss):
            loss().backward()
        for how, options in COMPILE_MODES.items():
            run = backward if options is None else torch.compile(
                backward, **options)

            def step(run=run):
                model.train()
                opt.zero_grad(set_to_none=True)
                run()
                opt.step()
            fns[(kind, how)] = step
    return fns


def compile_section(cfg, device, clock, log) -> List[Dict]:
    rows = []
    for graphs in cfg['graphs']:
        data, kwargs, nodes = nbody(graphs)
        data = data.to(device)
        data.y = data.pos + 0.1 * data.vel
        torch.manual_seed(0)
        model = build_model('gnn', output='point', **kwargs).to(device)
        fns = compile_candidates(model, data)
        compile_s = {}
        for key, fn in fns.items():
            if key[1] != 'eager':  # tracing, Inductor, graph capture
                compile_s[key] = sum(clock.wall(fn) for _ in range(3))
        t = interleaved(fns, clock, cfg['repeats'], cfg['min_repeats'],
                        cfg['warmup'], cfg['budget'])
        for (kind, how), fn in fns.items():
            rows.append(dict(workload='N-body', graphs=graphs, nodes=nodes,
                             model='GNN', kind=kind, how=how,
                             ms=t[(kind, how)]['median_s'] * 1e3,
                             repeats=t[(kind, how)]['repeats'],
                             compile_s=compile_s.get((kind, how))))
        for how in COMPILE_MODES:
            plain = [r for r in rows if r['graphs'] == graphs and
                     r['how'] == how and r['kind'] == 'plain'][0]
            fused = [r for r in rows if r['graphs'] == graphs and
                     r['how'] == how and r['kind'] == 'fused'][0]
            fused['fused_over_plain'] = _ratio(fused['ms'], plain['ms'])
        log(f'compiled steps, N-body x {graphs} graphs: done '
            f'({clock.elapsed():.0f} s)')
    return rows


def compile_table(rows: List[Dict]) -> List[str]:
    out = ['', '### Compiled training steps (GNN, N-body size)', '',
           'compile: the first three calls of each compiled variant '
           '(tracing, Inductor, CUDA graph capture), not in the times.', '',
           '| graphs | step | how | time | fused / plain | compile |',
           '|---|---|---|---|---|---|']
    for r in rows:
        out.append(f'| {r["graphs"]} x {r["nodes"]} | '
                   f'{"plain" if r["kind"] == "plain" else "REMUL fused"} | '
                   f'{r["how"]} | {r["ms"]:.3f} ms | '
                   f'{_f(r.get("fused_over_plain"))} | '
                   f'{_f(r["compile_s"], ".1f", " s")} |')
    return out


def compile_goals(rows: List[Dict]) -> List[str]:
    out = []
    top = max((r['graphs'] for r in rows), default=None)
    for r in rows:
        if r['kind'] == 'fused' and r['how'] == 'reduce-overhead' and \
                r.get('fused_over_plain') is not None:
            limit = 2.0 if r['graphs'] == top and top >= 1000 else 1.3
            ok = r['fused_over_plain'] <= limit
            out.append(f'N-body x {r["graphs"]}, GNN with CUDA graphs: '
                       f'fused REMUL {r["fused_over_plain"]:.2f}x plain '
                       f'({"meets" if ok else "misses"} <= {limit:g}x)')
    return out


# Tables and goals ##########################################################

def _f(value, fmt='.2f', unit=''):
    return '-' if value is None else f'{value:{fmt}}{unit}'


def tables(result: Dict) -> str:
    env = result['environment']
    out = [f'## GPU benchmark on {env["device_name"]} ({env["device"]})', '',
           f'torch {env["torch"]} (CUDA {env["cuda"]}), triton '
           f'{env["triton"]}, PyG {env["torch_geometric"]}, e3nn '
           f'{env["e3nn"]}; commit {env["commit"]}'
           f'{" (modified)" if env["modified"] else ""}; {env["date"]}; '
           f'{result["total_seconds"]:.0f} s in all. Kernels: '
           f'{env.get("kernels")}.', '',
           '### Per-graph transform (pos + vel, float32)', '',
           '| workload | candidate | time | GB/s | x clone |',
           '|---|---|---|---|---|']
    for r in result['transform']:
        out.append(f'| {r["workload"]} | {r["candidate"]} | '
                   f'{r["ms"]:.3f} ms | {r["gb_per_s"]:.1f} | '
                   f'{r["x_clone"]:.2f} |')
    out += ['', '### Models: inference and training step', '',
            '"x SEGNN" / "x EGNN": how many times faster than SEGNN / EGNN. '
            '"train step" is the step each model is trained with: plain for '
            'EGNN and SEGNN, the faster REMUL variant for the others; '
            '"train x SEGNN" compares it with SEGNN\'s plain step.', '',
            '| workload | model | params | inference | x SEGNN | x EGNN | '
            'plain step | REMUL step | REMUL / plain | fused step | '
            'fused / plain | train step | train x SEGNN | train x EGNN |',
            '|' + '---|' * 14]
    for r in result['models']:
        out.append(
            f'| {r["workload"]} ({r["graphs"]} x {r["nodes"]}) | '
            f'{r["model"]} | {r["params"]:,} | '
            f'{_f(r["infer_ms"], ".2f", " ms")} | '
            f'{_f(r["infer_vs_SEGNN"], ".1f")} | '
            f'{_f(r["infer_vs_EGNN"], ".2f")} | '
            f'{_f(r["plain_ms"], ".2f", " ms")} | '
            f'{_f(r["remul_ms"], ".2f", " ms")} | '
            f'{_f(r["remul_over_plain"])} | '
            f'{_f(r["fused_ms"], ".2f", " ms")} | '
            f'{_f(r["fused_over_plain"])} | '
            f'{_f(r["train_ms"], ".2f", " ms")} | '
            f'{_f(r["train_vs_SEGNN"], ".1f")} | '
            f'{_f(r["train_vs_EGNN"])} |')
    out += ['', '### Host-device syncs per step (forward + backward, or one '
            'transform call)', '',
            '| workload | device | what | plain | REMUL | fused | '
            'transform |', '|---|---|---|---|---|---|---|']
    grouped: Dict = {}
    for r in result['syncs']:
        key = (r['workload'], r['graphs'], r['device'], r['what'])
        grouped.setdefault(key, {})[r['kind']] = r['count']
    for (workload, graphs, dev, what), c in grouped.items():
        out.append(f'| {workload} ({graphs} graphs) | {dev} | {what} | ' +
                   ' | '.join(str(c.get(k, '-')) for k in
                              LOSSES + ('transform', )) + ' |')
    if result.get('compiled'):
        out += compile_table(result['compiled'])
    out += ['', '### Goals', ''] + [f'- {g}' for g in result['goals']]
    if result['notes']:
        out += ['', '### Notes', ''] + [f'- {n}' for n in result['notes']]
    return '\n'.join(out) + '\n'


def goals(result: Dict) -> List[str]:
    out = []
    for r in result['transform']:
        if r['candidate'] == 'apply':
            ok = r['x_clone'] <= 1.5
            out.append(f'transform {r["workload"]}: apply {r["x_clone"]:.2f}x'
                       f' clone ({"meets" if ok else "misses"} <= 1.5x)')
    top = max((r['graphs'] for r in result['models']), default=None)
    for r in result['models']:
        best = min((v for v in (r['remul_over_plain'], r['fused_over_plain'])
                    if v is not None), default=None)
        if best is not None:
            out.append(f'{r["workload"]} x {r["graphs"]}, {r["model"]}: '
                       f'REMUL step {best:.2f}x plain '
                       f'({"meets" if best <= 2 else "misses"} <= 2x)')
        if r['graphs'] == top and r['model'] in (
                'GNN', 'Transformer', 'Transformer (paper)'):
            seg, eg = r['infer_vs_SEGNN'], r['infer_vs_EGNN']
            if seg is not None:
                out.append(f'{r["workload"]} x {r["graphs"]}, {r["model"]}: '
                           f'inference {seg:.1f}x faster than SEGNN '
                           f'({"meets" if seg >= 10 else "misses"} >= 10x)')
            if eg is not None:
                out.append(f'{r["workload"]} x {r["graphs"]}, {r["model"]}: '
                           f'inference {eg:.2f}x EGNN\'s speed '
                           f'({"meets" if eg >= 1 else "misses"} >= 1x)')
    return out + compile_goals(result.get('compiled', []))


def _finite(value):
    """JSON without NaN/inf: non-finite floats become ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# Main ######################################################################

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=None,
                        help='output directory (default: benchmarks/results;'
                        ' with --quick a new temporary directory)')
    parser.add_argument('--device', default=None,
                        help='cuda or cpu (default: cuda when available; '
                        'cpu with --quick)')
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes and repeats: a smoke run in seconds')
    parser.add_argument('--max-seconds', type=float, default=240.0,
                        help='soft deadline: later candidates get only '
                        '--min-repeats')
    parser.add_argument('--budget', type=float, default=None,
                        help='seconds of timed calls per candidate')
    parser.add_argument('--compile', choices=('auto', 'on', 'off'),
                        default='auto', help='section 4, the compiled '
                        'steps (auto: on a CUDA device only; Inductor takes '
                        'tens of seconds per variant)')
    parser.add_argument('--repeats', type=int, default=None)
    parser.add_argument('--min-repeats', type=int, default=None)
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    for key in ('budget', 'repeats', 'min_repeats'):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    default = 'cpu' if args.quick or not torch.cuda.is_available() \
        else 'cuda'
    device = torch.device(args.device or default)
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    out_dir = args.out or (tempfile.mkdtemp() if args.quick else
                           osp.join(HERE, 'results'))
    keep_freed_memory()
    clock = Clock(device, args.max_seconds)
    log = lambda s: print(s, flush=True)  # noqa: E731

    env = environment(device)
    env['kernels'] = build_kernels(device)
    log(f'device: {env["device_name"]} ({device}); torch {env["torch"]}, '
        f'triton {env["triton"]}, PyG {env["torch_geometric"]}, e3nn '
        f'{env["e3nn"]}; commit {env["commit"]}')
    if device.type != 'cuda':
        log('not a CUDA device: the figures below time the CPU paths')
    result = dict(environment=env, config=dict(cfg, graphs=list(cfg['graphs']),
                                               max_seconds=args.max_seconds,
                                               quick=args.quick),
                  transform=[], models=[], syncs=[], compiled=[],
                  notes=[], errors=[])
    try:
        result['transform'] = transform_section(cfg, device, clock, log)
    except Exception:  # noqa: BLE001 - keep the other sections
        result['errors'].append('transform:\n' + traceback.format_exc())
        log(result['errors'][-1])
    try:
        rows, syncs, notes, errors = model_section(cfg, device, clock, log)
        result['models'], result['syncs'] = rows, syncs
        result['notes'] += notes
        result['errors'] += errors
    except Exception:  # noqa: BLE001
        result['errors'].append('models:\n' + traceback.format_exc())
        log(result['errors'][-1])
    if args.compile == 'on' or (args.compile == 'auto' and
                                device.type == 'cuda'):
        try:
            result['compiled'] = compile_section(cfg, device, clock, log)
        except Exception:  # noqa: BLE001
            result['errors'].append('compiled:\n' + traceback.format_exc())
            log(result['errors'][-1])
    if clock.late:
        result['notes'].append(
            f'the soft deadline ({args.max_seconds:.0f} s) was reached: '
            f'later candidates ran only {cfg["min_repeats"]} repeat(s)')
    result['total_seconds'] = clock.elapsed()
    result['goals'] = goals(result)
    text = tables(result)
    if result['errors']:
        text += '\n### Errors\n\n' + '\n'.join(
            f'```\n{e}```' for e in result['errors']) + '\n'
    print('\n' + text)
    os.makedirs(out_dir, exist_ok=True)
    paths = [osp.join(out_dir, 'gpu.json'), osp.join(out_dir, 'gpu.md')]
    with open(paths[0], 'w') as f:
        json.dump(_finite(result), f, indent=2, allow_nan=False)
    with open(paths[1], 'w') as f:
        f.write(text)
    print('wrote', ', '.join(paths))
    return 1 if result['errors'] else 0


if __name__ == '__main__':
    sys.exit(main())
