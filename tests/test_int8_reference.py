"""What int8 gains on this CPU (issue 26): the plain conv net every int8 row is read against,
and the CPU's int8 dot-product instructions that decide it."""

import pytest

from edgeaffect.machine import int8_dot_product
from edgeaffect.measure.int8_speed import cpu_reference, reference_line

AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu sse2 avx avx2 fma\n"
VNNI = "flags\t\t: fpu avx2 avx512f avx512_vnni\n"
PI5 = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes crc32 atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp\n"
PI4 = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"


@pytest.mark.parametrize("text, expected", [(AVX2, []), (VNNI, ["AVX-512 VNNI"]), (PI5, ["Arm SDOT/UDOT"]),
                                            (PI4, [])])
def test_the_cpus_int8_dot_product_is_read_from_cpuinfo(text, expected):
    assert int8_dot_product(text) == expected


def _ref(fp32_us, int8_us):
    return {"float32 us": fp32_us, "int8, every op us": int8_us, "exported / float32": int8_us / fp32_us,
            "threads": 1}


def test_the_reference_line_says_whether_int8_can_win_here():
    slower = reference_line(_ref(1000.0, 1340.0), "cpu X")
    assert "1.34x SLOWER" in slower and "cannot beat float on this CPU" in slower and "measured on cpu X" in slower
    faster = reference_line(_ref(700.0, 238.0), "cpu Y")
    assert "2.94x faster" in faster and "SLOWER" not in faster


def test_the_reference_is_measured_from_two_real_files():
    """Both files run here; their times are positive and the ratio is theirs (no speed is
    asserted: this machine is shared; make bench prints it)."""
    ref = cpu_reference(budget_s=0.02)
    assert ref["float32 us"] > 0 and ref["int8, every op us"] > 0
    assert ref["exported / float32"] == pytest.approx(ref["int8, every op us"] / ref["float32 us"])


def test_the_per_op_table_of_an_int8_file_says_whether_this_cpu_gains_from_int8(tmp_path):
    """Where an int8 file is slower than float, its per-op table says why it can be: the CPU's
    int8 dot-product instructions (or their absence)."""
    from edgeaffect.measure.int8_speed import _reference_files
    from edgeaffect.measure.profile import profile

    fp32, int8 = _reference_files(16)
    (tmp_path / "int8.tflite").write_bytes(int8)
    (tmp_path / "fp32.tflite").write_bytes(fp32)
    note = profile(tmp_path / "int8.tflite", budget_s=0.05)["op_profile_note"]
    assert "int8 dot-product" in note and "bench-int8" in note or "has int8 dot-product" in note
    assert "dot-product" not in profile(tmp_path / "fp32.tflite", budget_s=0.05)["op_profile_note"]
