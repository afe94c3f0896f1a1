import pytest

from torch_geometric_remul.roles import Roles, check_output


def test_declaration():
    r = Roles(points=('pos', 'y'), vectors='vel', pseudovectors='w',
              output='vector')
    assert r.inputs == (('pos', 'point'), ('y', 'point'), ('vel', 'vector'),
                        ('w', 'pseudovector'))
    assert r.role_of('w') == 'pseudovector' and r.role_of('q') == 'scalar'
    assert not r.multi_output and r.outputs == {'output': 'vector'}
    assert Roles.from_dict(r.to_dict()) == r
    assert r.replace(vectors=()).vectors == ()
    assert hash(r) == hash(Roles.from_dict(r.to_dict()))


def test_resolve_and_errors():
    r = Roles(vectors='vel')
    assert Roles.resolve(r, 'f', vectors=None) is r
    assert Roles.resolve(None, 'f', vectors='vel') == r
    with pytest.raises(ValueError, match="f: pass either 'roles' or "
                       "'vectors'"):
        Roles.resolve(r, 'f', vectors='vel')
    with pytest.raises(TypeError, match="'roles' must be a Roles"):
        Roles.resolve({'vectors': 'vel'}, 'f')
    with pytest.raises(ValueError, match="both in 'points' and in 'vectors'"):
        Roles(points='pos', vectors='pos')
    with pytest.raises(ValueError, match="'output' must be one of"):
        Roles(output='tensor')
    with pytest.raises(TypeError, match="'output' must be a role name"):
        check_output(3)
    with pytest.raises(ValueError, match='at least one output'):
        check_output({})
    with pytest.raises(TypeError, match='no field'):
        r.replace(scalars=('q', ))
