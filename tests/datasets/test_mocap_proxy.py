import numpy as np

from torch_geometric_remul.datasets import (
    asf_amc_positions,
    generate_mocap_proxy,
    read_asf,
    walking_proxy_angles,
)


def test_files_are_labelled(tmp_path):
    asf, amcs = generate_mocap_proxy(str(tmp_path), num_clips=2,
                                     num_frames=30)
    assert asf.endswith('synthetic_proxy_walk.asf')
    assert [p.rsplit('/', 1)[1] for p in amcs] == [
        'synthetic_proxy_walk_01.amc', 'synthetic_proxy_walk_02.amc']
    assert 'SYNTHETIC PROXY' in open(asf).read()
    assert all('SYNTHETIC PROXY' in open(p).read() for p in amcs)
    skel = read_asf(asf)
    assert skel.is_synthetic_proxy and 'SYNTHETIC PROXY' in \
        skel.documentation


def test_forward_kinematics_keeps_bone_lengths(tmp_path):
    asf, amcs = generate_mocap_proxy(str(tmp_path), num_clips=1,
                                     num_frames=100)
    skel = read_asf(asf)
    clip = asf_amc_positions(asf, amcs[0])
    X = clip.positions
    assert X.shape == (100, 19, 3) and clip.is_synthetic_proxy
    for child, parent in enumerate(clip.parents):
        if parent < 0:
            continue
        length = np.linalg.norm(X[:, child] - X[:, parent], axis=-1)
        np.testing.assert_allclose(
            length, skel.bones[clip.joint_names[child]].length, rtol=1e-9)


def test_walking_like_motion(tmp_path):
    asf, amcs = generate_mocap_proxy(str(tmp_path), num_clips=1,
                                     num_frames=480, seed=5)
    clip = asf_amc_positions(asf, amcs[0])
    X, names = clip.positions, clip.joint_names
    root = X[:, 0]
    # the pelvis advances horizontally, at a steady height
    step = np.linalg.norm(np.diff(root[:, [0, 2]], axis=0), axis=1)
    travelled = np.linalg.norm(root[-1, [0, 2]] - root[0, [0, 2]])
    assert travelled > 0.8 * step.sum() > 5.0
    assert np.ptp(root[:, 1]) < 1.0
    # head above the pelvis above the feet
    head, lfoot = X[:, names.index('head'), 1], X[:, names.index('lfoot'), 1]
    assert (head > root[:, 1]).all() and (root[:, 1] > lfoot + 5).all()
    # the legs swing in antiphase: their forward offsets anti-correlate
    heading = (root[-1] - root[0])[[0, 2]]
    heading /= np.linalg.norm(heading)
    fwd = lambda j: (X[:, names.index(j)][:, [0, 2]] - root[:, [0, 2]]) @ \
        heading  # noqa: E731
    assert np.corrcoef(fwd('ltibia'), fwd('rtibia'))[0, 1] < -0.5
    assert np.corrcoef(fwd('ltibia'), fwd('lradius'))[0, 1] < -0.3


def test_periodic_and_deterministic():
    a = walking_proxy_angles(600, seed=2)
    b = walking_proxy_angles(600, seed=2)
    c = walking_proxy_angles(600, seed=3)
    np.testing.assert_array_equal(a['lfemur'], b['lfemur'])
    assert not np.allclose(a['lfemur'], c['lfemur'])
    hip = a['lfemur'][:, 0] - a['lfemur'][:, 0].mean()
    spectrum = np.abs(np.fft.rfft(hip))
    freq = np.fft.rfftfreq(600, d=1 / 120.0)[spectrum.argmax()]
    assert 0.6 < freq < 1.4  # about one stride per second
