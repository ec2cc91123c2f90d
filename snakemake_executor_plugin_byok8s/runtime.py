"""The job runtime: byok8s's Python with Snakemake and the plugins, as one
directory that runs in any Linux image of the same CPU architecture, whatever its
C library, with nothing set in the environment.

A rule's own image (its `container:`) holds the user's tools and nothing of
byok8s. Its pods get the runtime from a container of the byok8s job image, beside
the job's, that copies it into an emptyDir mounted at MOUNT (podspec.py). The layout:

    MOUNT/bin/python3        the interpreter: its ELF interpreter is MOUNT/lib's
                             loader and its DT_RPATH MOUNT/lib, so it loads
                             the runtime's glibc and libraries, not the image's
    MOUNT/lib/               every shared library the interpreter and the
                             extension modules load (from the job image)
    MOUNT/lib/python3X.zip   the pure-Python part of the standard library and of
                             the packages, compiled (unchecked hash-based .pyc, so
                             no timestamp matters): one file to copy instead of
                             thousands, the first place the interpreter looks
    MOUNT/lib/python3.X/     the rest of the standard library (extension modules;
                             os.py, the landmark that makes MOUNT the prefix), and
                             the rest of the job image's venv's packages (those
                             with extension modules or data files, and the
                             distributions' metadata) in the site directory the
                             interpreter looks in below MOUNT: it sees no site
                             directory of the image's

The job's shell commands therefore see the image's own PATH, libraries and
`python`: no LD_LIBRARY_PATH, PYTHONPATH or PATH entry of the runtime's.
A pod copies it file by file, so it is kept to few files (botocore's API models:
only those the S3 storage plugin and credential providers load).
Built in the job image (Dockerfile, test/cluster/job-image.sh):

    python -m snakemake_executor_plugin_byok8s.runtime DEST [PATCHELF]
"""

from __future__ import annotations

import os
import py_compile
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

MOUNT = "/byok8s/rt"  # where a pod has it
BUILT = "/opt/byok8s-runtime"  # where the job image has it
PYTHON = f"{MOUNT}/bin/python3"
# -E: the image's PYTHON* variables are for its own Python; -s: no user site.
COMMAND = f"{PYTHON} -E -s"
LEFT_OUT = {"pip", "setuptools", "_distutils_hack", "wheel", "distutils-precedence.pth"}
STDLIB_LEFT_OUT = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
                   "site-packages", "dist-packages", "config-3.11-x86_64-linux-gnu"}  # fmt: skip
EXTRA_LIBS = ("libgcc_s.so.1",)  # dlopened by glibc for thread cancellation
PURE = (".py", ".pyc", ".pyi", "py.typed")  # what a package in the zip may hold
BOTOCORE_MODELS = ("s3", "sts", "sso", "sso-oidc")  # botocore/data/<service> kept
LDD_LINE = re.compile(r"^\s*(\S+)(?: => (\S+))? \(0x[0-9a-f]+\)$")


def shared_objects(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.so*") if p.is_file() and not p.is_symlink()]


def needed(files: list[Path], own: Path) -> dict[str, Path]:
    """soname -> path of every library `files` load that is not under `own` (a
    wheel's bundled libraries stay where its RUNPATH finds them), the loader too."""
    found: dict[str, Path] = {}
    for path in files:
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            match = LDD_LINE.match(line)
            if not match:
                continue
            name, where = match.groups()
            target = Path(where or name)
            if not target.is_absolute() or own in target.parents:
                continue  # linux-vdso, or bundled with the wheel
            found[Path(name).name if where else target.name] = target
    return found


def loader_name(python: Path) -> str:
    out = subprocess.run(["ldd", str(python)], capture_output=True, text=True).stdout
    for line in out.splitlines():
        match = LDD_LINE.match(line)
        if match and match.group(2) is None and match.group(1).startswith("/"):
            return Path(match.group(1)).name
    raise SystemExit(f"no ELF interpreter found for {python}")


def site_dir(python: Path, dest: Path, version: str) -> Path:
    """The site directory `python` adds below the prefix `dest` (Debian's Python:
    lib/python3.X/dist-packages, others' lib/python3.X/site-packages)."""
    code = f"import site; print('\\n'.join(site.getsitepackages([{str(dest)!r}])))"
    out = subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True).stdout
    below = dest / "lib" / version
    for line in out.splitlines():
        if Path(line).parent == below:
            return Path(line)
    return below / "site-packages"


def link_or_copy(src: str, dst: str) -> None:
    """A hard link where it can (the job image then holds the files once), a copy
    elsewhere."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build(dest: Path, patchelf: str = "patchelf") -> None:
    python = Path(os.path.realpath(sys._base_executable))  # type: ignore[attr-defined]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = Path(sysconfig.get_paths()["purelib"])
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "bin").mkdir(parents=True)
    lib = dest / "lib"

    def stdlib_kept(d: str, names: list[str]) -> list[str]:
        return [n for n in names if Path(d) == stdlib and n in STDLIB_LEFT_OUT]

    def site_kept(d: str, names: list[str]) -> list[str]:
        top = Path(d) == site
        return [n for n in names if top and (n in LEFT_OUT or n.split("-")[0] in LEFT_OUT)]

    shutil.copytree(stdlib, lib / version, symlinks=True, copy_function=link_or_copy,
                    ignore=stdlib_kept)  # fmt: skip
    shutil.copytree(site, site_dir(python, dest, version), symlinks=True,
                    copy_function=link_or_copy, ignore=site_kept)  # fmt: skip
    shutil.copy2(python, dest / "bin" / version)
    for alias in ("python3", "python"):
        (dest / "bin" / alias).symlink_to(version)
    libs = needed([python, *shared_objects(lib / version)], lib)
    for extra in EXTRA_LIBS:
        for base in ("/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/lib64", "/lib"):
            if (Path(base) / extra).exists():
                libs.setdefault(extra, Path(base) / extra)
                break
    for name, path in libs.items():
        shutil.copy2(os.path.realpath(path), lib / name)
    loader = loader_name(python)
    interpreter = f"{MOUNT}/lib/{loader}"
    command = [patchelf, "--set-interpreter", interpreter, "--force-rpath", "--set-rpath",
               f"{MOUNT}/lib", str(dest / "bin" / version)]  # fmt: skip
    subprocess.run(command, check=True)
    here = site_dir(python, dest, version)
    _keep_models(here / "botocore" / "data")
    _zip_pure(lib / f"python{sys.version_info.major}{sys.version_info.minor}.zip",
              lib / version, here)  # fmt: skip


def _keep_models(data: Path) -> None:
    for service in data.iterdir() if data.is_dir() else ():
        if service.is_dir() and service.name not in BOTOCORE_MODELS:
            shutil.rmtree(service)


def _pure(path: Path) -> bool:
    """A module, or a package of Python files only (a namespace package too: the
    zip has an entry for each directory, which zipimport needs to find one)."""
    if path.is_file():
        return path.suffix == ".py"
    files = [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else []
    return any(f.suffix == ".py" for f in files) and all(f.name.endswith(PURE) for f in files)


def _zip_pure(archive: Path, stdlib: Path, site: Path) -> None:
    """The pure-Python parts into `archive` (sources and unchecked-hash .pyc beside
    them, as zipimport reads them), removed from the tree. os.py stays: the landmark."""
    moved: list[tuple[Path, Path]] = []  # (file, directory it is named from)
    metadata: list[tuple[Path, Path]] = []  # the distributions' own, kept as they are
    for top in sorted(stdlib.iterdir()):
        if top.name not in ("lib-dynload", site.name, "os.py") and _pure(top):
            moved += [(f, stdlib) for f in ([top] if top.is_file() else top.rglob("*.py"))]
    for top in sorted(site.iterdir()):
        if top.name.endswith(".dist-info"):  # importlib.metadata reads them in a zip too
            metadata += [(f, site) for f in top.rglob("*") if f.is_file()]
        elif not top.name.endswith(".pth") and _pure(top):
            moved += [(f, site) for f in ([top] if top.is_file() else top.rglob("*.py"))]
    unchecked = py_compile.PycInvalidationMode.UNCHECKED_HASH
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(archive, "w") as out:
        every = moved + metadata
        folders = {p.as_posix() + "/" for f, base in every for p in f.relative_to(base).parents}
        for folder in sorted(folders - {"./"}):
            out.writestr(folder, "")
        for path, base in metadata:
            out.write(path, path.relative_to(base).as_posix())
            path.unlink()
        for n, (path, base) in enumerate(moved):
            name = path.relative_to(base).as_posix()
            compiled = Path(tmp) / f"{n}.pyc"
            try:
                py_compile.compile(str(path), cfile=str(compiled), dfile=name, doraise=True,
                                   invalidation_mode=unchecked)  # fmt: skip
            except py_compile.PyCompileError:
                continue  # left where it is (a module in another Python's syntax)
            out.write(path, name)
            out.write(compiled, name + "c")
            path.unlink()
    for base in (stdlib, site):
        for top in base.iterdir():
            if top.is_dir() and top.name not in ("lib-dynload", site.name) and not _left(top):
                shutil.rmtree(top)


def _left(top: Path) -> bool:
    """Whether a directory still holds something besides compiled files."""
    return any(f.is_file() and not f.name.endswith((".pyc", ".pyi", "py.typed"))
               for f in top.rglob("*"))  # fmt: skip


if __name__ == "__main__":
    build(Path(sys.argv[1]), *(sys.argv[2:3]))
