import os
import re

from setuptools import find_packages, setup

here = os.path.abspath(os.path.dirname(__file__))
with open(os.path.join(here, 'torch_geometric_remul', '__init__.py')) as f:
    version = re.search(r"^__version__ = '([^']+)'", f.read(), re.M).group(1)
with open(os.path.join(here, 'README.md'), encoding='utf-8') as f:
    long_description = f.read()

install_requires = [
    # No upper bound: pin the build you want (CPU or CUDA) before installing.
    'torch>=2.3',
    'torch_geometric>=2.5',
    'numpy',
    # the progress bar of `remul train`
    'tqdm',
    # the motion-capture readers check that a skeleton is a tree
    'networkx',
]

extras_require = {
    # triton: its interpreter (TRITON_INTERPRET=1) runs the CUDA kernel's
    # tests on CPU tensors (a ~290 MB wheel, ~1 GB installed; Linux only).
    'test': ['pytest', 'hypothesis', 'scipy', 'e3nn', 'rdkit',
             "triton; platform_system == 'Linux' and "
             "platform_machine in 'x86_64 aarch64'"],
    # Optional accelerators; they compile against the installed torch, so
    # install them with `pip install --no-build-isolation torch-scatter
    # torch-cluster` once torch is in place.
    'accel': ['torch-scatter', 'torch-cluster'],
    'e3nn': ['e3nn'],
    # Plots written by `remul train` (loss and equivariance curves).
    'plot': ['matplotlib'],
    'md': ['rdkit'],
    # The documentation site (`make docs`): Sphinx with autodoc/napoleon,
    # markdown pages through myst-parser, the furo theme.
    'docs': ['sphinx>=7.2', 'myst-parser>=2.0', 'furo'],
}
extras_require['full'] = sorted(
    set(extras_require['e3nn'] + extras_require['md']))

setup(
    name='torch-geometric-remul',
    version=version,
    description=('Relaxed equivariance via multitask learning (REMUL) for '
                 'PyTorch Geometric: per-graph rigid transforms, losses, '
                 'models and benchmarks.'),
    long_description=long_description,
    long_description_content_type='text/markdown',
    license='MIT',
    python_requires='>=3.10',
    packages=find_packages(include=['torch_geometric_remul',
                                    'torch_geometric_remul.*']),
    # The C source of the optional CPU kernel, compiled on first use.
    package_data={'torch_geometric_remul': ['_kernels/*.c']},
    include_package_data=True,
    install_requires=install_requires,
    extras_require=extras_require,
    entry_points={
        'console_scripts': ['remul=torch_geometric_remul.cli:main'],
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3 :: Only',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
