# Docstring examples of the RDKit stand-in generator need the optional
# 'md' extra: without RDKit they are not collected (its tests in
# tests/datasets skip with pytest.importorskip).
import importlib.util

collect_ignore = ([] if importlib.util.find_spec('rdkit') is not None
                  else ['md17_standin.py'])
