"""Tests for vm/zcvm.py's host-side pieces that need no guest (stdlib unittest;
CTest runs `python3 -m unittest tests.test_zcvm` from the repo root, label unit):
the kernel table, module files as packages ship them (.ko, .ko.xz), their
dependencies, and what lands in the initramfs.
"""

import importlib.util
import lzma
import os
import struct
import tempfile
import unittest
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


zcvm = load("zcvm_under_test", REPO_ROOT / "vm" / "zcvm.py")


def fake_module(depends):
    """A minimal ELF64 relocatable with a .modinfo section saying depends=..."""
    modinfo = b"license=GPL\0" + b"depends=" + ",".join(depends).encode() + b"\0"
    shstr = b"\0.modinfo\0.shstrtab\0"
    body_off = 64
    modinfo_off = body_off
    shstr_off = modinfo_off + len(modinfo)
    shoff = (shstr_off + len(shstr) + 7) & ~7
    ehdr = bytearray(64)
    ehdr[:4] = b"\x7fELF"
    ehdr[4] = 2  # ELFCLASS64
    ehdr[5] = 1  # little endian
    struct.pack_into("<Q", ehdr, 0x28, shoff)
    struct.pack_into("<HHH", ehdr, 0x3A, 64, 3, 2)  # shentsize, shnum, shstrndx
    data = bytearray(ehdr) + modinfo + shstr
    data += b"\0" * (shoff - len(data))

    def shdr(name, off, size):
        return struct.pack("<IIQQQQ", name, 1, 0, 0, off, size) + b"\0" * 24

    data += b"\0" * 64  # section 0: null
    data += shdr(1, modinfo_off, len(modinfo))
    data += shdr(10, shstr_off, len(shstr))
    return bytes(data)


class KernelTable(unittest.TestCase):
    def test_both_debian_kernels(self):
        self.assertIn("debian-6.1", zcvm.KERNELS)
        self.assertIn("debian-6.12", zcvm.KERNELS)
        for name, spec in zcvm.KERNELS.items():
            self.assertTrue(spec["prefix"].startswith("linux-image-"), name)

    def test_run_py_offers_the_same_kernels(self):
        load("zcbench_run_py_for_zcvm", REPO_ROOT / "run.py")  # puts zcrun/ on sys.path
        from zcrun import commands
        self.assertEqual(commands.guest_kernels(), list(zcvm.KERNELS))


class Modules(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.release = "6.12.0-test"
        self.base = Path(self.tmp.name, "lib", "modules", self.release)
        (self.base / "kernel" / "drivers" / "net").mkdir(parents=True)
        (self.base / "kernel" / "net" / "core").mkdir(parents=True)

    def write(self, rel, data):
        (self.base / rel).write_bytes(data)

    def test_names_of_plain_and_xz_modules(self):
        self.assertEqual(zcvm.module_name("veth.ko"), ("veth", ".ko"))
        self.assertEqual(zcvm.module_name("veth.ko.xz"), ("veth", ".ko.xz"))
        self.assertEqual(zcvm.module_name("nf-nat.ko.xz"), ("nf_nat", ".ko.xz"))
        self.assertIsNone(zcvm.module_name("modules.dep"))

    def test_xz_module_is_unpacked_and_its_depends_read(self):
        # Debian 6.12 ships .ko.xz; busybox insmod needs the plain ELF.
        self.write("kernel/net/core/pktgen.ko.xz", lzma.compress(fake_module([]), format=lzma.FORMAT_XZ))
        self.write("kernel/drivers/net/veth.ko.xz", lzma.compress(fake_module(["pktgen"]), format=lzma.FORMAT_XZ))
        order = zcvm.module_load_order(self.tmp.name, self.release, ["veth"])
        self.assertEqual(order, ["kernel/net/core/pktgen.ko.xz", "kernel/drivers/net/veth.ko.xz"])
        self.assertEqual(zcvm.initramfs_name(order[1]), "kernel/drivers/net/veth.ko")
        data = zcvm.module_data(os.path.join(self.base, order[1]))
        self.assertEqual(data[:4], b"\x7fELF")

    def test_plain_module_unchanged(self):
        mod = fake_module([])
        self.write("kernel/drivers/net/veth.ko", mod)
        order = zcvm.module_load_order(self.tmp.name, self.release, ["veth"])
        self.assertEqual(order, ["kernel/drivers/net/veth.ko"])
        self.assertEqual(zcvm.initramfs_name(order[0]), order[0])
        self.assertEqual(zcvm.module_data(os.path.join(self.base, order[0])), mod)

    def test_builtin_xz_listing_skips_the_module(self):
        (self.base / "modules.builtin").write_text("kernel/drivers/net/veth.ko\n")
        self.assertEqual(zcvm.module_load_order(self.tmp.name, self.release, ["veth"]), [])

    def test_missing_module_is_an_environment_error(self):
        with self.assertRaises(zcvm.ZcvmError) as cm:
            zcvm.module_load_order(self.tmp.name, self.release, ["pktgen"])
        self.assertEqual(cm.exception.code, zcvm.EXIT_ENV)


if __name__ == "__main__":
    unittest.main()
