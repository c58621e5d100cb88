"""The Makefile itself: the configuration file's default path, compiled in,
follows PREFIX/SYSCONFDIR from one build to the next (README: build with the
same PREFIX you install with); make install keeps an edited configuration."""

import os
import shutil
import subprocess
import tempfile
import unittest

from harness import BIN_DIR, REPO, once_is_enough

CONFIG_OBJ = "build/release/obj/config.o"


@once_is_enough
class SysconfdirTest(unittest.TestCase):
    def setUp(self):
        self.tree = tempfile.mkdtemp(prefix="files-api-it-build-")
        self.addCleanup(shutil.rmtree, self.tree, True)
        shutil.copy(REPO / "Makefile", self.tree)
        for part in ("src", "include"):
            shutil.copytree(REPO / part, os.path.join(self.tree, part))

    def make(self, *args):
        return subprocess.run(["make", "-s", "--no-print-directory"] + list(args), cwd=self.tree,
                              capture_output=True, text=True, timeout=120)

    def compiled_in(self):
        with open(os.path.join(self.tree, CONFIG_OBJ), "rb") as f:
            return f.read()

    def test_another_prefix_remakes_what_holds_the_path(self):
        self.assertEqual(self.make(CONFIG_OBJ).returncode, 0)
        self.assertIn(b"/usr/local/etc/files-api/files-api.conf", self.compiled_in())
        self.assertEqual(self.make("-q", CONFIG_OBJ).returncode, 0)  # up to date
        self.assertEqual(self.make("-q", "PREFIX=/opt/fa", CONFIG_OBJ).returncode, 1)
        built = self.make("PREFIX=/opt/fa", CONFIG_OBJ)
        self.assertEqual(built.returncode, 0, built.stderr)
        self.assertIn(b"/opt/fa/etc/files-api/files-api.conf", self.compiled_in())
        self.assertEqual(self.make("-q", "PREFIX=/opt/fa", CONFIG_OBJ).returncode, 0)
        self.assertEqual(self.make("SYSCONFDIR=/etc", CONFIG_OBJ).returncode, 0)
        self.assertIn(b"/etc/files-api/files-api.conf", self.compiled_in())
        self.assertNotIn(b"/opt/fa/etc", self.compiled_in())


@once_is_enough
class InstallTest(unittest.TestCase):
    def test_the_installed_configuration_names_the_units_data_and_outlives_a_reinstall(self):
        dest = tempfile.mkdtemp(prefix="files-api-it-install-")
        self.addCleanup(shutil.rmtree, dest, True)
        install = ["make", "-s", "--no-print-directory", "install", "DESTDIR=" + dest]
        if BIN_DIR == (REPO / "build/san/bin").resolve():
            install.append("SANITIZE=1")  # the build under test: no other made, bin/ kept
        first = subprocess.run(install, cwd=REPO, capture_output=True, text=True, timeout=300)
        self.assertEqual(first.returncode, 0, first.stderr)
        conf = os.path.join(dest, "usr/local/etc/files-api/files-api.conf")
        for program in ("files-fcgi", "filesctl"):
            self.assertTrue(os.access(os.path.join(dest, "usr/local/bin", program), os.X_OK))
        # Its data directory is where the systemd units' workers keep the data,
        # which they take from it: filesctl run by hand finds the same.
        got = subprocess.run([str(BIN_DIR / "filesctl"), "--config", conf, "config", "get",
                              "data_dir"], capture_output=True, text=True)
        self.assertEqual(got.stdout.strip(), "/var/lib/files-api", got.stderr)
        for unit in ("files-api.service", "files-api-gc.service"):
            with open(os.path.join(dest, "usr/local/share/doc/files-api/examples/systemd", unit)) as f:
                text = f.read()
            self.assertIn("Environment=FILES_API_CONFIG=/usr/local/etc/files-api/files-api.conf\n", text)
            self.assertIn("Environment=FILES_API_DATA_DIR=/var/lib/files-api\n", text)
        # Every JSON error page serve.sh uses, for the snippets (lighttpd's prefix
        # wants status-NNN.html).
        errors = os.path.join(dest, "usr/local/share/files-api/errors")
        for name in os.listdir(REPO / "conf/errors"):
            for installed in (name, "status-" + name.replace(".json", ".html")):
                with open(os.path.join(errors, installed), "rb") as f:
                    self.assertEqual(f.read(), (REPO / "conf/errors" / name).read_bytes())
        with open(conf, "a") as f:
            f.write("max_file_bytes = 1000\n")
        again = subprocess.run(install, cwd=REPO, capture_output=True, text=True, timeout=300)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("files-api.conf kept", again.stdout)
        self.assertNotIn("warning", again.stderr)
        with open(conf) as f:
            self.assertIn("max_file_bytes = 1000\n", f.read())
        with open(conf + ".new") as f:
            self.assertIn("\ndata_dir = /var/lib/files-api\n", f.read())
        # One kept from an older install, whose data_dir was ./var: said so.
        with open(conf, "w") as f:
            f.write("data_dir = ./var\n")
        old = subprocess.run(install, cwd=REPO, capture_output=True, text=True, timeout=300)
        self.assertEqual(old.returncode, 0, old.stderr)
        self.assertIn("warning: its data_dir is ./var", old.stderr)


if __name__ == "__main__":
    unittest.main()
