#!/bin/sh
# Builds the sockmap forwarding prototype in this directory (needs clang, libbpf-dev, bpftool).
set -e
cd "$(dirname "$0")"
clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c sm.bpf.c -o sm.bpf.o
bpftool gen skeleton sm.bpf.o > sm.skel.h
gcc -O2 -Wall -o smproxy smproxy.c -lbpf -lelf -lz
