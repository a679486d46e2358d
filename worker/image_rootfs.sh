#!/bin/sh
# Assembles in $1 the files the worker runs on, all of them from the Debian packages installed in
# this build stage: Debian's python3 (interpreter, standard library with its bytecode), the shared
# libraries that it, its extension modules and those of /opt/venv load (found with ldd), the
# dynamic loader, the CA bundle and the accounts. No shell, coreutils, apt or dpkg: the worker
# runs `python -m worker`, which starts only ffmpeg, ffprobe and qjs (static binaries). The
# packages the files come from are recorded in $1/var/lib/dpkg/status, so image scanners still
# find what is installed (and its vulnerabilities).
set -eu
root=$1
mkdir -p "$root"

# A path and every symlink on the way to its file, each copied as it is (merged /usr: /lib is usr/lib).
copy() {
    p=$1
    while :; do
        dir=$(readlink -f "$(dirname "$p")")
        p="$dir/$(basename "$p")"
        cp -a --parents "$p" "$root/"
        [ -L "$p" ] || break
        target=$(readlink "$p")
        case $target in /*) p=$target ;; *) p="$dir/$target" ;; esac
        [ -e "$p" ] || [ -L "$p" ] || break  # a link to a file the slim base left out (docs)
    done
}

# Merged /usr's top-level links, and the loader where every ELF file looks for it.
cp -a /bin /lib /lib64 /sbin "$root/"
copy /lib64/ld-linux-x86-64.so.2

python_packages="python3 python3-minimal python3.11 python3.11-minimal libpython3.11-minimal libpython3.11-stdlib"
for pkg in $python_packages; do
    dpkg-query -L "$pkg" | while read -r f; do
        case $f in
            /usr/lib/python3.11/*) continue ;;  # copied whole below
            /usr/share/doc/* | /usr/share/man/* | /usr/share/lintian/*) continue ;;
        esac
        if [ -f "$f" ] || [ -L "$f" ]; then copy "$f"; fi
    done
done
# The standard library's bytecode, compiled when the package was configured (not in its file list).
cp -a /usr/lib/python3.11 "$root/usr/lib/"

# Every shared library the interpreter and the extension modules load (and those they load).
libs=$(
    { echo /usr/bin/python3.11; find /usr/lib/python3.11/lib-dynload /opt -name '*.so*' -type f; } \
    | xargs -n 50 ldd 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u
)
# pycryptodomex (yt-dlp's AES, RSA) opens GMP by name for its big integers: dlopen, which ldd
# does not see, after `ldconfig -p` (ctypes' find_library) has said where it is.
dlopened=$(ldconfig -p | awk '$1 == "libgmp.so.10" && $NF ~ /^\// { print $NF; exit }')
[ -n "$dlopened" ] || { echo "image_rootfs: libgmp.so.10 not installed" >&2; exit 1; }
libs="$libs $dlopened"
for lib in $libs; do copy "$lib"; done
copy /sbin/ldconfig

# TLS trust (Debian's bundle; OpenSSL's default paths point here), accounts, name resolution,
# the loader's configuration and cache, and what identifies the distribution.
copy /etc/ssl/certs/ca-certificates.crt
for f in /usr/lib/ssl/cert.pem /usr/lib/ssl/certs /etc/ssl/openssl.cnf /etc/passwd /etc/group \
         /etc/nsswitch.conf /etc/host.conf /etc/gai.conf /etc/ld.so.conf /etc/debian_version /etc/os-release; do
    copy "$f"
done
cp -a /etc/ld.so.conf.d "$root/etc/"
ldconfig -r "$root"
mkdir -p "$root/tmp" "$root/home" "$root/var/lib/dpkg"
chmod 1777 "$root/tmp"
cp -a /home/worker "$root/home/"

# The packages of everything copied, as dpkg's status file (what scanners read).
owners=$(
    for lib in $libs /lib64/ld-linux-x86-64.so.2 /sbin/ldconfig; do
        dpkg-query -S "$lib" "$(readlink -f "$lib")" "/lib/${lib#/usr/lib/}" 2>/dev/null || true
    done | cut -d: -f1 | sort -u
)
for pkg in $python_packages ca-certificates base-files $owners; do
    dpkg-query -s "$pkg"
    echo
done >"$root/var/lib/dpkg/status"
