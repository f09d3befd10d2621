#!/usr/bin/env python3
# bench.py ROUNDS [quick]  -- alternating runs direct / haproxy / smproxy
import subprocess, json, time, sys, os, statistics, csv, io
ROUNDS = int(sys.argv[1]); QUICK = len(sys.argv) > 2
D = os.path.dirname(os.path.abspath(__file__))
RP, IP = 28020, 28030
TARGETS = {'direct': (RP, IP), 'haproxy': (28022, 28032), 'smproxy': (28021, 28031)}
pids = {}

def start(name, cmd):
    p = subprocess.Popen(cmd, stdout=open(f'{D}/{name}.out', 'w'), stderr=subprocess.STDOUT)
    pids[name] = p; return p

def proc_cpu(pid):
    if pid is None: return 0
    f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return int(f[11]) + int(f[12])   # utime+stime ticks (fields 14,15)

def sys_busy():
    f = [int(x) for x in open('/proc/stat').readline().split()[1:]]
    return sum(f) - f[3] - f[4]      # minus idle, iowait

def measure(target, fn):
    pid = {'direct': None, 'haproxy': pids['haproxy'].pid, 'smproxy': None}[target]
    smp = [pids['sm_r'].pid, pids['sm_i'].pid] if target == 'smproxy' else []
    c0 = proc_cpu(pid) + sum(proc_cpu(x) for x in smp); s0 = sys_busy(); t0 = time.time()
    r = fn(TARGETS[target])
    c1 = proc_cpu(pid) + sum(proc_cpu(x) for x in smp); s1 = sys_busy()
    r['proxy_cpu_s'] = (c1 - c0) / 100; r['sys_cpu_s'] = (s1 - s0) / 100; r['wall'] = time.time() - t0
    return r

def redis(ports, extra=()):
    n = 2000 if QUICK else (10000 if '-k' in extra else 100000)
    out = subprocess.run(['redis-benchmark', '-h', '127.0.0.1', '-p', str(ports[0]), '-c', '50', '-n', str(n),
                          '-t', 'ping_mbulk', '--csv', *extra], capture_output=True, text=True, timeout=300).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    r = rows[0]
    return {'n': n, 'rps': float(r['rps']), 'p50': float(r['p50_latency_ms']), 'p99': float(r['p99_latency_ms'])}

def iperf(ports, P=1):
    t = 1 if QUICK else 4
    out = subprocess.run(['iperf3', '-c', '127.0.0.1', '-p', str(ports[1]), '-t', str(t), '-P', str(P), '-J'],
                         capture_output=True, text=True, timeout=120).stdout
    j = json.loads(out)['end']['sum_received']
    return {'gbps': j['bits_per_second'] / 1e9, 'bytes': j['bytes']}

TESTS = [('redis_c50', lambda p: redis(p)), ('iperf_P1', lambda p: iperf(p, 1)),
         ('iperf_P4', lambda p: iperf(p, 4)), ('redis_k0', lambda p: redis(p, ('-k', '0')))]

def main():
    start('redis', ['redis-server', '--port', str(RP), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'])
    start('iperf3s', ['iperf3', '-s', '-p', str(IP)])
    start('haproxy', ['haproxy', '-f', f'{D}/hap.cfg'])
    start('sm_r', [f'{D}/smproxy', '28021', str(RP)])
    start('sm_i', [f'{D}/smproxy', '28031', str(IP)])
    time.sleep(1.5)
    res = {}
    try:
        for rnd in range(ROUNDS):
            for tname, fn in TESTS:
                order = ['direct', 'haproxy', 'smproxy']
                order = order[rnd % 3:] + order[:rnd % 3]
                for tg in order:
                    r = measure(tg, fn); res.setdefault((tname, tg), []).append(r)
                    print(rnd, tname, tg, json.dumps(r), flush=True)
                    time.sleep(1)
    finally:
        for p in pids.values(): p.terminate()
        for p in pids.values():
            try: p.wait(5)
            except Exception: p.kill()
    json.dump({f'{a}|{b}': v for (a, b), v in res.items()}, open(f'{D}/results{"_quick" if QUICK else ""}.json', 'w'), indent=1)
    print('\nSUMMARY (median of %d)' % ROUNDS)
    for (tname, tg), v in res.items():
        med = lambda k: statistics.median(x[k] for x in v)
        if 'rps' in v[0]:
            n = v[0]['n']
            print(f"{tname:10s} {tg:8s} rps {med('rps'):10.0f} p50 {med('p50'):.3f} p99 {med('p99'):.3f} ms "
                  f"proxyCPU/req {statistics.median(x['proxy_cpu_s']/n*1e6 for x in v):.2f}us "
                  f"sysCPU/req {statistics.median(x['sys_cpu_s']/n*1e6 for x in v):.2f}us")
        else:
            print(f"{tname:10s} {tg:8s} Gbit/s {med('gbps'):7.2f} "
                  f"proxyCPU/GB {statistics.median(x['proxy_cpu_s']/(x['bytes']/1e9) for x in v):.3f}s "
                  f"sysCPU/GB {statistics.median(x['sys_cpu_s']/(x['bytes']/1e9) for x in v):.3f}s")
main()
