"""Small hand-written ASF, AMC and BVH files shared by the reader tests."""
import pytest

ASF = """# a hand-written two-bone skeleton
:version 1.10
:name test_skeleton
:units
  mass 1.0
  length 1.0
  angle deg
:documentation
  for the forward-kinematics test
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name a
     direction 0 1 0
     length 2
     axis 0 0 0  XYZ
    dof rz
    limits (-180.0 180.0)
  end
  begin
     id 2
     name b
     direction 2 0 0
     length 1
     axis 0 0 90  XYZ
    dof rx
    limits (-180.0 180.0)
  end
  begin
     id 3
     name c
     direction 0 0 1
     length 0.5
     axis 0 0 0  XYZ
  end
:hierarchy
  begin
    root a c
    a b
  end
"""

AMC = """#!OML:ASF test.asf
:FULLY-SPECIFIED
:DEGREES
1
root 1 2 3 0 0 0
a 0
b 0
2
root 0 0 0 0 90 0
a 90
b 30
"""


BVH = """HIERARCHY
ROOT hips
{
  OFFSET 0.0 0.0 0.0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT spine
  {
    OFFSET 0.0 2.0 0.0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0.0 1.0 0.0
    }
  }
  JOINT leg
  {
    OFFSET 1.0 0.0 0.0
    CHANNELS 3 Zrotation Xrotation Yrotation
  }
}
MOTION
Frames: 3
Frame Time: 0.008333
1 2 3 0 0 0 0 0 0 0 0 0
0 0 0 90 0 0 0 90 0 0 0 0
0 0 0 0 90 0 90 0 0 0 0 0
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def assert_malformed(tmp_path, name, text, match, read) -> None:
    """``read`` of ``text`` written to ``tmp_path/name`` raises a
    :class:`ValueError` matching ``match`` and naming the file."""
    path = write(tmp_path, name, text)
    with pytest.raises(ValueError, match=match) as info:
        read(path)
    assert name in str(info.value)
