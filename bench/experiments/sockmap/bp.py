# backpressure: upstream never reads; how much can the client push through the proxy?
import socket, threading, time, sys
PP, UP = int(sys.argv[1]), int(sys.argv[2]); LIMIT = int(sys.argv[3]) << 20
def memavail():
    for l in open('/proc/meminfo'):
        if l.startswith('MemAvailable'): return int(l.split()[1]) // 1024
def tcpmem():
    for l in open('/proc/net/sockstat'):
        if l.startswith('TCP:'): return l.strip()
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); ls.bind(('127.0.0.1', UP)); ls.listen(4)
held = []
threading.Thread(target=lambda: held.append(ls.accept()), daemon=True).start()
m0 = memavail()
c = socket.create_connection(('127.0.0.1', PP)); c.settimeout(3)
buf = b'x' * (1 << 20); sent = 0; t0 = time.time()
try:
    while sent < LIMIT:
        sent += c.send(buf)
except socket.timeout:
    pass
time.sleep(1)
print(f"client pushed {sent>>20} MiB in {time.time()-t0:.1f}s (limit {LIMIT>>20}); MemAvailable drop {m0-memavail()} MiB; {tcpmem()}")
c.close()
