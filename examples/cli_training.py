"""Training from Python what ``remul train`` trains from the command line.

Calls ``torch_geometric_remul.train.train`` with a tiny configuration of the
default task (REMUL on the simulated charged-particle N-body system, our
simulator of the EGNN setup) in a temporary folder: 16 training graphs,
2 epochs, a 1-layer GNN with 8 features. The numbers it prints show that
the pipeline runs; they are not a result (``make train`` is the real run,
and docs/results.md the measured figures).

It then continues the same run for one more epoch from its checkpoint, as
``remul train --resume RUN_DIR --epochs 3`` does.

Equivalent commands:

    remul train --epochs 2 --num-train 16 --num-val 8 --num-test 8 \\
        --hidden-channels 8 --num-layers 1 --batch-size 8 --eval-graphs 8 \\
        --eval-samples 2 --data-root DATA --run-dir RUN_DIR
    remul train --resume RUN_DIR --epochs 3

Run: ``python examples/cli_training.py`` (a few seconds on a CPU).
Tutorial: docs/tutorial_cli.md; every option: docs/training.md.
"""
import os
import tempfile

from torch_geometric_remul.train import TrainConfig, train


def main(work):
    config = TrainConfig(
        task='nbody', model='gnn', loss='remul', beta=1.0,
        epochs=2, num_train=16, num_val=8, num_test=8, hidden_channels=8,
        num_layers=1, batch_size=8, eval_graphs=8, eval_samples=2,
        data_root=os.path.join(work, 'data'),
        run_dir=os.path.join(work, 'run'))
    result = train(config, progress=False)
    print(f'run directory: {sorted(os.listdir(result.run_dir))}')
    for row in result.history:
        print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}, "
              f"val MSE {row['val_mse']:.4f}, val E' "
              f"{row['val_E_prime']:.4f}")
    print(f"test MSE {result.test['mse']:.4f}, "
          f"test E' {result.test['E_prime']:.4f}")

    # Continue the run: same as `remul train --resume RUN_DIR --epochs 3`.
    resumed = train(TrainConfig(epochs=3), resume_from=result.run_dir,
                    progress=False)
    print(f"after resuming: {len(resumed.history)} epochs, test MSE "
          f"{resumed.test['mse']:.4f}")


if __name__ == '__main__':
    with tempfile.TemporaryDirectory() as tmp:  # data and run directory
        main(tmp)
