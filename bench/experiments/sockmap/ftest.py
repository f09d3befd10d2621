#!/usr/bin/env python3
# functional test: ftest.py PROXY_PORT UPSTREAM_PORT
import socket, threading, hashlib, os, sys, time
PP, UP = int(sys.argv[1]), int(sys.argv[2])
N = 64 << 20
TO = 60

def sender(s, data, shut=True):
    s.sendall(data)
    if shut: s.shutdown(socket.SHUT_WR)

def reader(s, out):
    h = hashlib.sha256(); n = 0
    while True:
        b = s.recv(1 << 20)
        if not b: break
        h.update(b); n += len(b)
    out.append((n, h.hexdigest()))

def run_bidir():
    c2s, s2c = os.urandom(N), os.urandom(N)
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('127.0.0.1', UP)); ls.listen(8)
    res_srv, res_cli = [], []
    def srv():
        s, _ = ls.accept(); s.settimeout(TO)
        t = threading.Thread(target=sender, args=(s, s2c)); t.start()
        reader(s, res_srv); t.join(); s.close()
    st = threading.Thread(target=srv); st.start()
    c = socket.create_connection(('127.0.0.1', PP)); c.settimeout(TO)
    t0 = time.time()
    t = threading.Thread(target=sender, args=(c, c2s)); t.start()
    try:
        reader(c, res_cli)
    except Exception as e:
        print("client read error", e)
    t.join(); c.close(); st.join(TO); ls.close()
    dt = time.time() - t0
    ok1 = res_srv and res_srv[0] == (N, hashlib.sha256(c2s).hexdigest())
    ok2 = res_cli and res_cli[0] == (N, hashlib.sha256(s2c).hexdigest())
    print(f"bidir 64MiB each way: client->server {'OK' if ok1 else 'FAIL'} {res_srv[0][0] if res_srv else None} "
          f"{res_srv[0][1][:16] if res_srv else ''}, server->client {'OK' if ok2 else 'FAIL'} "
          f"{res_cli[0][0] if res_cli else None} {res_cli[0][1][:16] if res_cli else ''}, {dt:.2f}s")
    return ok1 and ok2

def run_half(req=8 << 20, rep=16 << 20):
    q, r = os.urandom(req), os.urandom(rep)
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('127.0.0.1', UP)); ls.listen(8)
    got = []
    def srv():
        s, _ = ls.accept(); s.settimeout(TO)
        reader(s, got)           # read request until client's FIN
        s.sendall(r); s.close()  # then reply and close
    st = threading.Thread(target=srv); st.start()
    c = socket.create_connection(('127.0.0.1', PP)); c.settimeout(TO)
    c.sendall(q); c.shutdown(socket.SHUT_WR)
    out = []
    try: reader(c, out)
    except Exception as e: print("client read error", e)
    c.close(); st.join(TO); ls.close()
    ok = got and got[0] == (req, hashlib.sha256(q).hexdigest()) and out and out[0] == (rep, hashlib.sha256(r).hexdigest())
    print(f"half-close req {req} rep {rep}: {'OK' if ok else 'FAIL'} server got {got[0][0] if got else None}, client got {out[0][0] if out else None}")
    return ok

what = sys.argv[3] if len(sys.argv) > 3 else "all"
ok = True
if what in ("all", "bidir"): ok &= bool(run_bidir())
if what in ("all", "half"):
    ok &= bool(run_half())
    ok &= bool(run_half(10, 10))
print("RESULT", "PASS" if ok else "FAIL")
